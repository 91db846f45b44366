"""Registered versions and their aliases: lookups, recorded alias moves, rollback, loading.

MLflow 3 deprecates registry stages; fraudkit maps the seed's ``Staging``/``Production`` to
the aliases ``staging``/``production`` and records every alias move as a registered-model
tag ``fraudkit.alias_move.<alias>.<time ns>`` holding JSON (from, to, time, user, reason,
evidence run, action). One tag per move keeps concurrent writers from overwriting each
other's history, and makes rollback a replay of that log.

Promotion through gates lives in :mod:`fraudkit.tracking.promotion`; comparison, performance history
and degradation in :mod:`fraudkit.tracking.history`. Every function takes an
:class:`mlflow.MlflowClient` first; :class:`fraudkit.MlflowManager` exposes the lifecycle as
methods bound to its client (``mlflow_manager.rollback_model(...)``).

Models are loaded only through :func:`load_model`, which refuses a model holding types
outside the kit's own allow-list (:data:`TRUSTED_TYPE_MODULES`) whatever its ``MLmodel``
file says.

Every registry query pages through MLflow's search results, so it works the same on the
embedded SQLite store and on a remote tracking server however many versions exist.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException

from fraudkit.core import config
from fraudkit.core.config import stage_to_alias
from fraudkit.core.exceptions import ConfigurationError, ModelError, RegistryError
from fraudkit.core.tags import (
    ALIAS_MOVE_TAG_PREFIX,
    MODEL_NAME_TAG,
    MODEL_VERSION_TAG,
)
from fraudkit.tracking.store import find_run, is_missing, paged, quote, retrying

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

__all__ = [
    "MODEL_URI_SCHEMES",
    "MOVE_COLUMNS",
    "TRUSTED_TYPE_MODULES",
    "alias_history",
    "alias_holder",
    "discard_version",
    "foreign_types",
    "get_version",
    "get_version_by_alias",
    "link_run_to_version",
    "list_versions",
    "load_model",
    "model_spec",
    "move_alias",
    "registered_model",
    "require_alias_holder",
    "resolve_model_uri",
    "rollback_model",
]

MOVE_COLUMNS = [
    "alias",
    "from",
    "to",
    "time",
    "user",
    "reason",
    "evidence_run_id",
    "action",
    "gate",
]
MODEL_URI_SCHEMES = ("models:/", "runs:/")
# fraudkit models are built from scikit-learn, numpy and scipy objects. Any other type in a
# model (a custom function, os.system) would have to be trusted by skops, and would then
# run wherever the model is loaded, so such a model is refused at logging and at loading.
TRUSTED_TYPE_MODULES = ("sklearn.", "numpy.", "scipy.")
# Gradient boosting with categorical features keeps functools.partial(check_array, ...).
# skops checks the function a partial wraps as a type of its own (here scikit-learn's), so
# trusting the partial by exact name trusts nothing the module list above does not.
_TRUSTED_TYPE_NAMES = frozenset({"functools.partial"})

# Registered-model tag values are VARCHAR(5000) on SQL stores; leave room for the record.
_MAX_REASON = 2000


# -- lookups ---------------------------------------------------------------------------


def registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    """Return the registered model ``name`` (with its aliases and tags).

    Raises
    ------
    RegistryError
        No such model; the message says how to log one or list them.
    """
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        raise RegistryError(
            f"registered model {name!r} not found; log one with "
            "mlflow_manager.log_model_with_metadata(...) or check the name "
            "(mlflow_manager.get_registry_overview() lists them)"
        ) from exc


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    """Return version ``version`` of the registered model ``name``.

    Raises
    ------
    RegistryError
        Unknown model, or no such version (the message lists the versions there are).
    """
    number = str(version).strip()
    try:
        if number.isdigit():
            return client.get_model_version(name, number)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
    registered_model(client, name)  # an unknown model is the better message
    known = ", ".join(str(v.version) for v in list_versions(client, name)) or "none"
    raise RegistryError(f"model {name!r} has no version {number!r}; its versions: {known}")


def list_versions(client: MlflowClient, model_name: str) -> list[ModelVersion]:
    """Return all versions of ``model_name``, oldest first.

    Their ``aliases`` are NOT filled in (MLflow's version search leaves them empty); the
    registered model knows them (:func:`registered_model`).
    """
    found = paged(client.search_model_versions, filter_string=f"name = {quote(model_name)}")
    return sorted(found, key=lambda v: int(v.version))


def alias_holder(model: RegisteredModel, alias: str) -> str | None:
    """Return the version number holding ``alias`` on ``model``, or None."""
    holder = (model.aliases or {}).get(alias)
    return None if holder is None else str(holder)


def require_alias_holder(client: MlflowClient, model_name: str, stage: str) -> ModelVersion:
    """Return the version holding the alias of ``stage``.

    Raises
    ------
    RegistryError
        Unknown model, or no version holds the alias (the message says how to set it).
    """
    holder = get_version_by_alias(client, model_name, stage)
    if holder is None:
        raise RegistryError(
            f"model {model_name!r} has no {stage_to_alias(stage)!r} alias yet; promote a "
            f"version with mlflow_manager.promote_model({model_name!r}, VERSION, {stage!r}) "
            "or compare explicit versions=[...]"
        )
    return holder


def get_version_by_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """Return the version holding ``alias`` (a stage name is accepted too), or None.

    Raises
    ------
    RegistryError
        Unknown model.
    ConfigurationError
        Unknown stage or alias.
    """
    holder = alias_holder(registered_model(client, model_name), stage_to_alias(alias))
    return None if holder is None else client.get_model_version(model_name, holder)


def resolve_model_uri(client: MlflowClient, uri: str) -> ModelVersion | None:
    """Return the registered version a ``models:/name@alias`` or ``models:/name/N`` URI names.

    Other URIs (``runs:/...``, paths) name no registered version: None.

    Raises
    ------
    RegistryError
        The model, version or alias does not exist.
    """
    if not uri.startswith("models:/"):
        return None
    reference = uri[len("models:/") :].strip("/")
    if "@" in reference:
        name, alias = reference.rsplit("@", 1)
        model = registered_model(client, name)
        holder = alias_holder(model, alias)
        if holder is None:
            known = ", ".join(sorted(model.aliases or {})) or "none yet"
            raise RegistryError(
                f"{uri}: model {name!r} has no alias {alias!r}; its aliases: {known}"
            )
        return client.get_model_version(name, holder)
    name, _, version = reference.rpartition("/")
    if not name or not version.isdigit():
        raise RegistryError(
            f"cannot read model URI {uri!r}; use models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    return get_version(client, name, version)


# -- alias moves -----------------------------------------------------------------------


def move_alias(
    client: MlflowClient,
    model_name: str,
    alias: str,
    version: str | int,
    *,
    reason: str | None = None,
    evidence_run_id: str | None = None,
    action: str = "promote",
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Point ``alias`` at ``version`` and record the move; return the record.

    No gate is applied (see :func:`promote_model`); ``gate`` is the evidence of one that
    was, recorded with the move. When the record cannot be written the alias is put back,
    so the history never misses a move.
    """
    alias = stage_to_alias(alias)
    current = alias_holder(registered_model(client, model_name), alias)
    stamp = time.time_ns()
    record = {
        "alias": alias,
        "from": current,
        "to": str(version),
        "time": datetime.fromtimestamp(stamp / 1e9, UTC).isoformat(timespec="seconds"),
        "user": _user(),
        "reason": reason[:_MAX_REASON] if reason else None,
        "evidence_run_id": evidence_run_id,
        "action": action,
        "gate": gate,
    }
    # Two processes setting an alias the model does not have yet both INSERT it on a
    # SQLite store; the loser's retry finds it and moves it (last writer wins).
    retrying(lambda: client.set_registered_model_alias(model_name, alias, str(version)))
    try:
        client.set_registered_model_tag(
            model_name, f"{ALIAS_MOVE_TAG_PREFIX}{alias}.{stamp}", json.dumps(record)
        )
    except BaseException:
        if current is None:
            client.delete_registered_model_alias(model_name, alias)
        else:
            client.set_registered_model_alias(model_name, alias, current)
        raise
    return record


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def discard_version(client: MlflowClient, model_name: str, version: str) -> None:
    """Delete a half-registered version (and its model when it was the only one)."""
    try:
        client.delete_model_version(model_name, str(version))
        if not list(client.search_model_versions(f"name = {quote(model_name)}", max_results=1)):
            client.delete_registered_model(model_name)
    except (MlflowException, RegistryError):
        pass  # best effort: the original error is what the caller needs to see


def alias_history(client: MlflowClient, model_name: str, alias: str | None = None) -> pd.DataFrame:
    """Return every recorded alias move of ``model_name``, oldest first.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    alias : str, optional
        Only moves of this alias (or stage); default all.

    Returns
    -------
    DataFrame
        Columns alias, from, to (version strings; ``from`` is missing for a first move),
        time (UTC), user, reason, evidence_run_id, action (``promote`` or ``rollback``),
        gate (for a promotion through the improvement gate, a dict of what it compared:
        metric, candidate and holder values, dataset name and digest, source; else None).

    Raises
    ------
    RegistryError
        Unknown model.
    """
    return _moves(registered_model(client, model_name), stage_to_alias(alias) if alias else None)


def _moves(model: RegisteredModel, wanted: str | None) -> pd.DataFrame:
    records = []
    for key, value in model.tags.items():
        if not key.startswith(ALIAS_MOVE_TAG_PREFIX):
            continue
        tag_alias, _, stamp = key[len(ALIAS_MOVE_TAG_PREFIX) :].rpartition(".")
        if stamp.isdigit() and (wanted is None or tag_alias == wanted):
            records.append((int(stamp), json.loads(value)))
    records.sort(key=lambda item: item[0])
    frame = pd.DataFrame([r for _, r in records], columns=MOVE_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def _holders(history: pd.DataFrame) -> list[str]:
    """Replay the move log as a stack: a promotion pushes, a rollback pops back to its target.

    A rollback to a version that never held the alias acts as a promotion.
    """
    stack: list[str] = []
    for action, target in zip(history["action"], history["to"], strict=True):
        target = str(target)
        if action == "rollback" and target in stack:
            del stack[len(stack) - stack[::-1].index(target) :]
        elif not stack or stack[-1] != target:
            stack.append(target)
    return stack


def rollback_model(
    client: MlflowClient,
    model_name: str,
    stage: str = "Production",
    *,
    to_version: str | int | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Move the alias of ``stage`` back to its previous holder (or to ``to_version``).

    The previous holder comes from replaying the recorded moves: each rollback undoes one
    promotion, so two rollbacks after three promotions return to the first version.
    Versions deleted since are skipped. The rollback is recorded like any move.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    stage : str
        ``"Production"`` or ``"Staging"`` (any case), or the alias itself.
    to_version : str or int, optional
        Roll back to this version instead (no gate is applied).
    reason : str, optional
        Recorded with the move (default ``"rollback"``).

    Returns
    -------
    ModelVersion
        The version now holding the alias.

    Raises
    ------
    RegistryError
        Unknown model or version, or no earlier holder is recorded and ``to_version`` was
        not given.
    """
    alias = stage_to_alias(stage)
    model = registered_model(client, model_name)
    current = alias_holder(model, alias)
    if to_version is not None:
        target = str(get_version(client, model_name, to_version).version)
    else:
        existing = {str(v.version) for v in list_versions(client, model_name)}
        history = _moves(model, alias)
        holders = [v for v in _holders(history) if v in existing]
        while holders and holders[-1] == current:
            holders.pop()
        if not holders:
            raise RegistryError(
                f"no earlier holder of alias {alias!r} on {model_name!r} to roll back to "
                f"({len(history)} moves recorded); pass to_version= to choose one"
            )
        target = holders[-1]
    if target != current:
        move_alias(
            client, model_name, alias, target, reason=reason or "rollback", action="rollback"
        )
    return client.get_model_version(model_name, target)


def link_run_to_version(
    client: MlflowClient, run_id: str, model_name: str, version: str | int
) -> None:
    """Tag ``run_id`` as measuring ``model_name`` version ``version`` (monitoring runs).

    Its metrics then appear in :func:`get_model_performance_history` for that version.

    Raises
    ------
    RegistryError
        Unknown model, version or run.
    """
    mv = get_version(client, model_name, version)
    if find_run(client, run_id) is None:
        raise RegistryError(f"run {run_id!r} not found; link an existing run")
    tags = [RunTag(MODEL_NAME_TAG, model_name), RunTag(MODEL_VERSION_TAG, str(mv.version))]
    client.log_batch(run_id, tags=tags)


# -- loading ---------------------------------------------------------------------------


def foreign_types(type_names: Iterable[str]) -> list[str]:
    """Return the names in ``type_names`` outside the kit's allow-list.

    The allow-list is :data:`TRUSTED_TYPE_MODULES`: scikit-learn, numpy and scipy types,
    and ``functools.partial``, whose wrapped function skops checks as a type of its own.
    """
    return [
        name
        for name in type_names
        if not (str(name).startswith(TRUSTED_TYPE_MODULES) or str(name) in _TRUSTED_TYPE_NAMES)
    ]


def model_spec(uri: str, *, client: MlflowClient | None = None) -> Any:
    """The ``MLmodel`` of a model URI (signature, metadata), without loading the model.

    For what a caller needs before scoring (the input columns, the schema and feature
    definitions): only the small ``MLmodel`` file is read, not the model.

    Raises
    ------
    ModelError
        The model cannot be found.
    """
    from mlflow.models import Model

    store_uri = client.tracking_uri if client is not None else config.tracking_uri()
    with _tracking_uri(store_uri):
        try:
            return Model.load(uri)
        except (MlflowException, OSError) as error:
            text = getattr(error, "message", None) or str(error) or type(error).__name__
            raise ModelError(
                f"could not read model {uri!r}: {text.splitlines()[0].rstrip('.')}; check "
                "the name, version or alias (`fraudkit dashboard registry` lists them)"
            ) from error


def load_model(uri: str, *, client: MlflowClient | None = None) -> Any:
    """Load a model from a ``models:/`` or ``runs:/`` URI as an MLflow pyfunc model.

    The model's skops types are checked against the kit's own allow-list
    (:data:`TRUSTED_TYPE_MODULES`) before anything is loaded, both the types its
    ``MLmodel`` file trusts and the types its model file holds: a file changed after
    logging is refused even when its ``MLmodel`` was changed to trust it. Only scikit-learn
    models serialised with skops are loaded (as
    :meth:`~fraudkit.MlflowManager.log_model_with_metadata` logs them); a pickled model
    could run any code on loading.

    Parameters
    ----------
    uri : str
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/RUN_ID/PATH``.
    client : MlflowClient, optional
        The store to load from; default the kit's tracking store
        (:func:`fraudkit.core.config.tracking_uri`).

    Returns
    -------
    mlflow.pyfunc.PyFuncModel
        Its ``predict`` returns the served model's decisions
        (:mod:`fraudkit.tracking.served`): ``fraud_probability``, ``alert``, ``threshold``,
        ``model_version`` and the reasons; :func:`fraudkit.science.models.predict_scores`
        takes the probability alone.

    Raises
    ------
    ConfigurationError
        ``uri`` is not a model URI.
    ModelError
        The model cannot be found or loaded, or holds types outside the allow-list.
    """
    if not isinstance(uri, str) or not uri.startswith(MODEL_URI_SCHEMES):
        raise ConfigurationError(
            f"model {uri!r} is not a model URI; pass a fitted model or a URI starting "
            f"with {' or '.join(MODEL_URI_SCHEMES)} (e.g. models:/credit_card_fraud_detector"
            "@production)"
        )
    import mlflow.artifacts
    import mlflow.pyfunc
    from skops.io.exceptions import UntrustedTypesFoundException

    # The client's store, not mlflow's global URIs, which may point elsewhere; fraudkit
    # keeps the registry in the tracking store.
    store_uri = client.tracking_uri if client is not None else config.tracking_uri()
    with tempfile.TemporaryDirectory(prefix="fraudkit-") as folder, _tracking_uri(store_uri):
        try:
            path = mlflow.artifacts.download_artifacts(
                uri, dst_path=folder, tracking_uri=store_uri, registry_uri=store_uri
            )
            _check_skops_types(uri, Path(path))
            return mlflow.pyfunc.load_model(path)
        except (MlflowException, OSError) as error:
            text = getattr(error, "message", None) or str(error) or type(error).__name__
            raise ModelError(
                f"could not load model {uri!r}: {text.splitlines()[0].rstrip('.')}; check the "
                "name, version or alias (`fraudkit dashboard registry` lists them)"
            ) from error
        except UntrustedTypesFoundException as error:
            # The model file holds types its MLmodel does not trust: changed after logging.
            raise ModelError(
                f"refusing to load model {uri!r}: {str(error).rstrip('.')}; its file holds "
                "types it was not logged with, so re-log the model with "
                "mlflow_manager.log_model_with_metadata"
            ) from error


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Point mlflow's global tracking URI at ``uri`` for the block, then back.

    MLflow resolves a version's source, its logged model (``models:/m-...``), through the
    global tracking URI whatever ``download_artifacts`` is given: in a process that never
    set it, the default store of the working directory is searched and the model is "not
    found". MLflow keeps its global URI in ``MLFLOW_TRACKING_URI`` too; a process that had
    none gets none back (None unsets both), not the default pinned.
    """
    import mlflow

    previous = os.environ.get(config.ENV_TRACKING_URI)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(cast(Any, previous))  # None: typed str, accepted


def _check_skops_types(uri: str, folder: Path) -> None:
    """Refuse a downloaded model whose skops types leave the kit's allow-list."""
    import skops.io
    import yaml

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text()) or {}
    flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    if flavor.get("serialization_format") != "skops":
        raise ModelError(
            f"refusing to load model {uri!r}: it is not a scikit-learn model serialised with "
            f"skops (serialization_format={flavor.get('serialization_format')}), and any "
            "other format can run code when loaded; log it with "
            "mlflow_manager.log_model_with_metadata"
        )
    listed = flavor.get("skops_trusted_types") or []
    held = skops.io.get_untrusted_types(file=folder / flavor.get("pickled_model", "model.skops"))
    foreign = sorted(set(foreign_types([*listed, *held])))
    if foreign:
        raise ModelError(
            f"refusing to load model {uri!r}: it holds {', '.join(foreign)}, outside the "
            "types fraudkit trusts (scikit-learn, numpy and scipy); its files were changed "
            "after logging, so re-log the model with mlflow_manager.log_model_with_metadata"
        )
