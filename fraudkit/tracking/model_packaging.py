"""How a fitted scikit-learn classifier is packaged when it is logged to MLflow.

:func:`fraudkit.tracking.model_logging.log_model_with_metadata` decides what a training run
keeps; this module decides how the model itself is stored:

* :func:`check_classifier`: whether the model can be logged under a name, checked before
  anything is logged;
* :func:`skops_trusted_types`: the types skops must trust to load the model, refused
  unless they are scikit-learn, numpy and scipy ones;
* :func:`pip_requirements`: explicit pins of the libraries the model needs;
* :func:`feature_signature`: the signature on the feature frame, or on a declared schema's
  columns (:func:`schema_signature`);
* :func:`definitions_metadata` / :func:`read_definitions`: the schema and the behavioural
  feature definitions, kept in the model's ``MLmodel`` file so that model, schema and
  definitions are one versioned thing;
* :func:`served_config` / :func:`decision_signature`: what the served model
  (:mod:`fraudkit.tracking.served`) needs: the threshold, the reasons' means, the typed
  decision outputs and inference params;
* :func:`log_classifier`: the model logged with all of it and registered as a version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from fraudkit.core.exceptions import FraudkitError, ModelError, RegistryError, TrackingError
from fraudkit.science.features import FeatureSpec
from fraudkit.science.model_inputs import input_columns
from fraudkit.science.reasons import ReasonExplainer
from fraudkit.science.schema import PRESETS, TransactionSchema
from fraudkit.tracking import served as served_flavor
from fraudkit.tracking.registry import foreign_types
from fraudkit.tracking.served import (
    DEFAULT_REASONS,
    decision_config,
    decision_outputs,
    decision_params,
)
from fraudkit.tracking.store import quote

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

__all__ = [
    "DEFINITIONS_KEY",
    "check_classifier",
    "decision_signature",
    "definitions_metadata",
    "definitions_params",
    "feature_signature",
    "log_classifier",
    "pip_requirements",
    "read_definitions",
    "read_simulation",
    "schema_signature",
    "served_config",
    "skops_trusted_types",
]

# The key of the MLmodel file's metadata that holds the schema and feature definitions.
DEFINITIONS_KEY = "fraudkit_definitions"


def check_classifier(model: Any, model_name: str) -> list[str]:
    """Check that ``model`` can be logged under ``model_name``; return its skops trusted types.

    Parameters
    ----------
    model : sklearn estimator
        The model to log.
    model_name : str
        Registered model name.

    Returns
    -------
    list of str
        :func:`skops_trusted_types` of ``model``.

    Raises
    ------
    TrackingError
        The model has no ``predict_proba``, is unfitted or holds types other than
        scikit-learn, numpy and scipy ones.
    RegistryError
        ``model_name`` is empty or a name MLflow cannot search.
    """
    if not hasattr(model, "predict_proba"):
        raise TrackingError(
            f"model of type {type(model).__name__} has no predict_proba; log a fitted "
            "scikit-learn classifier"
        )
    if not isinstance(model_name, str) or not model_name.strip():
        raise RegistryError("model_name must be a non-empty string")
    quote(model_name)  # a name MLflow cannot search could never be read back
    return skops_trusted_types(model)


def pip_requirements() -> list[str]:
    """Pin scikit-learn, skops, numpy, pandas and scipy to their installed versions.

    Returns
    -------
    list of str
        ``"<distribution>==<version>"`` requirements.
    """
    # Explicit pins skip MLflow's requirement inference, which costs ~10 s per model.
    from importlib.metadata import version

    return [
        f"{dist}=={version(dist)}" for dist in ("scikit-learn", "skops", "numpy", "pandas", "scipy")
    ]


def skops_trusted_types(model: Any) -> list[str]:
    """Return the types skops must trust to load ``model``.

    Parameters
    ----------
    model : sklearn estimator
        The model to log.

    Returns
    -------
    list of str
        The type names skops does not trust by default, all scikit-learn, numpy or scipy.

    Raises
    ------
    TrackingError
        The model is unfitted or holds types other than scikit-learn, numpy and scipy ones.
    """
    import skops.io
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except (NotFittedError, TypeError) as exc:
        raise TrackingError(
            f"model of type {type(model).__name__} is not a fitted scikit-learn estimator "
            f"({exc}); fit it (fraudkit.science.models.train_model) before logging it"
        ) from None
    found = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    foreign = foreign_types(found)
    if foreign:
        raise TrackingError(
            f"refusing to log a model holding {', '.join(foreign)}: only scikit-learn, numpy "
            "and scipy types are trusted when it is loaded; build it from scikit-learn parts "
            "(fraudkit.science.models.build_model)"
        )
    return found


def feature_signature(model: Any, input_example: Any) -> Any:
    """Return the model signature: inferred from ``input_example``, else from the fit.

    Parameters
    ----------
    model : sklearn estimator
        A fitted classifier with ``predict_proba``.
    input_example : DataFrame or None
        A few feature rows; without them the signature lists the columns the model was
        fitted on (``feature_names_in_``, ``Class`` aside) as doubles.

    Returns
    -------
    mlflow.models.ModelSignature

    Raises
    ------
    TrackingError
        Neither an input example nor the fitted feature names are available.
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    if input_example is not None:
        return infer_signature(input_example, model.predict_proba(input_example))
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise TrackingError(
            "cannot infer a model signature: pass input_example= (a few feature rows) or "
            "signature= to log_model_with_metadata"
        )
    columns: list[Any] = [ColSpec("double", str(n)) for n in names if str(n) != "Class"]
    return ModelSignature(inputs=Schema(columns))


def schema_signature(
    model: Any, schema: TransactionSchema, features: FeatureSpec, input_example: Any
) -> Any:
    """The signature of a model on a declared schema, typed from the schema, not a sample.

    The amount, numeric and behavioural columns are doubles; the categorical columns are
    strings and optional, since an empty cell scores as "other". Outputs are inferred from
    the model's answer on ``input_example``.

    Parameters
    ----------
    model : sklearn estimator
        A fitted classifier with ``predict_proba``.
    schema : TransactionSchema
        The schema the model was trained on.
    features : FeatureSpec
        Its behavioural features, entities filled in.
    input_example : DataFrame
        A few rows holding the model's input columns.
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    categorical = set(schema.categorical)
    columns: list[Any] = [
        ColSpec("string", name, required=False) if name in categorical else ColSpec("double", name)
        for name in input_columns(schema, features.names())
    ]
    outputs = infer_signature(input_example, model.predict_proba(input_example)).outputs
    return ModelSignature(inputs=Schema(columns), outputs=outputs)


def definitions_metadata(
    schema: TransactionSchema | None,
    features: FeatureSpec | None,
    simulation: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The ``MLmodel`` metadata holding a schema, its feature definitions and the simulated
    world the model was trained on, if any (None for Kaggle's schema, which the model's
    signature says all about)."""
    if schema is None or schema == PRESETS["kaggle"]:
        return None
    spec = (features or FeatureSpec()).for_schema(schema)
    definitions = {"schema": schema.to_dict(), "source": schema.name, "features": spec.to_dict()}
    if simulation:
        definitions["simulation"] = dict(simulation)
    return {DEFINITIONS_KEY: definitions}


def definitions_params(schema: TransactionSchema, features: FeatureSpec) -> dict[str, str]:
    """The feature definitions as run params, readable in the MLflow UI's run table."""
    spec = features.for_schema(schema)
    return {
        "features.schema": schema.name or "custom",
        "features.entities": ",".join(spec.entities),
        "features.windows": ",".join(spec.windows),
        "features.label_windows": ",".join(spec.label_windows),
        "features.label_delay": spec.label_delay,
    }


def _definitions(model: Any) -> dict[str, Any]:
    # A loaded pyfunc model holds its MLmodel as `metadata`; an MLmodel holds the dict.
    metadata = getattr(model, "metadata", None)
    if not isinstance(metadata, dict):
        metadata = getattr(metadata, "metadata", None)
    return (metadata or {}).get(DEFINITIONS_KEY) or {}


def read_simulation(model: Any) -> dict[str, Any] | None:
    """The simulated world a logged model was trained on (``HandbookWorld.to_dict``), or
    None when it was trained on a file or on Kaggle's schema."""
    return _definitions(model).get("simulation")


def read_definitions(model: Any) -> tuple[TransactionSchema | None, FeatureSpec | None]:
    """The schema and feature definitions a logged model carries: ``(None, None)`` for a
    Kaggle-schema model.

    Parameters
    ----------
    model : mlflow.pyfunc.PyFuncModel or mlflow.models.Model
        A model loaded with :func:`fraudkit.tracking.registry.load_model`, or its
        ``MLmodel`` (:func:`fraudkit.tracking.registry.model_spec`).

    Returns
    -------
    tuple of TransactionSchema or None, FeatureSpec or None

    Raises
    ------
    TrackingError
        The metadata is there but is not what :func:`definitions_metadata` writes.
    """
    definitions = _definitions(model)
    if not definitions:
        return None, None
    source = definitions.get("source") or "the logged model's schema"
    try:
        schema = TransactionSchema.from_dict(definitions["schema"], name=source)
        return schema, FeatureSpec.from_dict(definitions["features"])
    except (AttributeError, KeyError, TypeError, FraudkitError) as error:
        raise TrackingError(
            f"the model's {DEFINITIONS_KEY} metadata is not a schema and feature "
            f"definitions ({error}); log the model again with "
            "mlflow_manager.log_model_with_metadata(..., schema=, features=)"
        ) from None


def served_config(
    model: Any, model_name: str, threshold: float | None, training_data: Any = None
) -> dict[str, Any]:
    """The served model's ``model_config``: its threshold and what its reasons need.

    A model whose reasons cannot be given (a logistic model without ``training_data``, whose
    reasons are deviations from the training mean, or gradient boosting that splits on
    categories natively) is served with ``reasons`` defaulting to 0; asking it for reasons
    then raises the explainer's error, which names the fix.

    Parameters
    ----------
    model : sklearn estimator
        The fitted model.
    model_name : str
        Registered model name.
    threshold : float or None
        The version's operating threshold.
    training_data : DataFrame, optional
        The transactions the model was trained on.
    """
    try:
        explainer = ReasonExplainer(model, training_data)
    except ModelError:
        return decision_config(model_name, threshold, reasons=0)
    return decision_config(model_name, threshold, explainer.feature_means, DEFAULT_REASONS)


def decision_signature(signature: Any, config: Mapping[str, Any]) -> Any:
    """``signature``'s inputs with the served model's outputs and inference params."""
    from mlflow.models import ModelSignature

    return ModelSignature(
        inputs=signature.inputs,
        outputs=decision_outputs(config["reasons"] or DEFAULT_REASONS),
        params=decision_params(config["threshold"], config["reasons"]),
    )


def log_classifier(
    model: Any,
    model_name: str,
    *,
    input_example: Any,
    signature: Any,
    trusted_types: list[str],
    model_config: Mapping[str, Any],
    metadata: dict[str, Any] | None = None,
) -> ModelInfo:
    """Log ``model`` as the artifact ``model`` of the active run and register a version.

    The model is stored with skops and :func:`pip_requirements` in its ``sklearn`` flavor;
    its ``python_function`` flavor is the kit's served model
    (:mod:`fraudkit.tracking.served`), which answers with decisions: probability, alert at
    the version's threshold, version and reasons.

    Parameters
    ----------
    model : sklearn estimator
        A fitted classifier with ``predict_proba``.
    model_name : str
        Registered model name.
    input_example : DataFrame or None
        A few feature rows, kept with the model.
    signature : mlflow.models.ModelSignature or None
        Its inputs type the served model's; None infers them with
        :func:`feature_signature`.
    trusted_types : list of str
        :func:`skops_trusted_types` of ``model``.
    model_config : mapping
        :func:`served_config`: threshold and reasons of the served model.
    metadata : dict, optional
        Kept in the ``MLmodel`` file (:func:`definitions_metadata`).

    Returns
    -------
    mlflow.models.model.ModelInfo
        Its ``model_id`` and ``registered_model_version`` name what was logged.

    Raises
    ------
    TrackingError
        No signature can be inferred.
    """
    from mlflow.models import Model

    inputs = signature or feature_signature(model, input_example)
    return Model.log(
        None,  # artifact_path: deprecated for name, but still positional
        name="model",
        flavor=served_flavor,
        registered_model_name=model_name,
        metadata=metadata,
        sk_model=model,
        model_config=dict(model_config),
        skops_trusted_types=trusted_types,
        pip_requirements=pip_requirements(),
        signature=decision_signature(inputs, model_config),
        input_example=cast(Any, input_example),  # None is allowed, whatever the hint
    )
