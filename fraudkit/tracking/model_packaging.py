"""How a fitted scikit-learn classifier is packaged when it is logged to MLflow.

:func:`fraudkit.tracking.model_logging.log_model_with_metadata` decides what a training run
keeps; this module decides how the model itself is stored:

* :func:`check_classifier`: whether the model can be logged under a name, checked before
  anything is logged;
* :func:`skops_trusted_types`: the types skops must trust to load the model, refused
  unless they are scikit-learn, numpy and scipy ones;
* :func:`pip_requirements`: explicit pins of the libraries the model needs;
* :func:`feature_signature`: the signature on the feature frame;
* :func:`log_classifier`: the model logged with all three and registered as a version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from mlflow.sklearn import log_model as log_sklearn_model

from fraudkit.core.exceptions import RegistryError, TrackingError
from fraudkit.tracking.registry import foreign_types
from fraudkit.tracking.store import quote

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

__all__ = [
    "check_classifier",
    "feature_signature",
    "log_classifier",
    "pip_requirements",
    "skops_trusted_types",
]


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


def log_classifier(
    model: Any,
    model_name: str,
    *,
    input_example: Any,
    signature: Any,
    trusted_types: list[str],
) -> ModelInfo:
    """Log ``model`` as the artifact ``model`` of the active run and register a version.

    The model is stored with skops, :func:`pip_requirements` and
    ``pyfunc_predict_fn="predict_proba"``, so the pyfunc model returns fraud probabilities.

    Parameters
    ----------
    model : sklearn estimator
        A fitted classifier with ``predict_proba``.
    model_name : str
        Registered model name.
    input_example : DataFrame or None
        A few feature rows, kept with the model.
    signature : mlflow.models.ModelSignature or None
        None infers it with :func:`feature_signature`.
    trusted_types : list of str
        :func:`skops_trusted_types` of ``model``.

    Returns
    -------
    mlflow.models.model.ModelInfo
        Its ``model_id`` and ``registered_model_version`` name what was logged.

    Raises
    ------
    TrackingError
        No signature can be inferred.
    """
    return log_sklearn_model(
        sk_model=model,
        name="model",
        pip_requirements=pip_requirements(),
        signature=signature or feature_signature(model, input_example),
        input_example=cast(Any, input_example),  # None is allowed, whatever the hint
        pyfunc_predict_fn="predict_proba",
        serialization_format="skops",
        skops_trusted_types=trusted_types,
        registered_model_name=model_name,
    )
