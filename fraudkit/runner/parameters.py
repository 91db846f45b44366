"""The kit's notebooks and their ``parameters`` cells.

:func:`notebook_path` finds a notebook by name; :func:`copy_notebooks` copies the kit's
notebooks into a folder of the user's, to edit (``FRAUDKIT_NOTEBOOKS_DIR`` then points the
runner at the copies); :func:`notebook_parameters` reads the
parameters it declares (type, default and help, from the cell tagged ``parameters``);
:func:`validate_parameters` checks values against them before anything runs, and
:func:`parameter_values` gives what a run is logged with. :func:`log_parameters` is the
notebooks' own call for interactive runs.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError, NotebookParameterError, SchemaError

if TYPE_CHECKING:
    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "NOTEBOOKS",
    "PIPELINE_ORDER",
    "available_notebooks",
    "copy_notebooks",
    "log_parameters",
    "notebook_parameters",
    "notebook_path",
    "parameter_values",
    "validate_parameters",
]

NOTEBOOKS: dict[str, str] = {
    "training": "01_training.ipynb",
    "model_comparison": "02_model_comparison.ipynb",
    "ab_testing": "03_ab_testing.ipynb",
    "monitoring": "04_monitoring.ipynb",
    "retraining": "05_retraining.ipynb",
}
PIPELINE_ORDER: tuple[str, ...] = tuple(NOTEBOOKS)


def notebook_path(name: str) -> Path:
    """Return the path of notebook ``name`` (training, model_comparison, ...).

    Raises
    ------
    ConfigurationError
        Unknown name, or the notebook file is missing.
    """
    key = ExperimentType.parse(name).value if name not in NOTEBOOKS else name
    path = config.notebooks_dir() / NOTEBOOKS[key]
    if not path.is_file():
        raise ConfigurationError(
            f"notebook {key!r} not found at {path}; set FRAUDKIT_NOTEBOOKS_DIR to the "
            "folder holding the kit's notebooks"
        )
    return path


def available_notebooks() -> list[str]:
    """Return the pipeline's notebooks that exist, in pipeline order."""
    return [n for n in PIPELINE_ORDER if (config.notebooks_dir() / NOTEBOOKS[n]).is_file()]


def copy_notebooks(target: str | Path, *, force: bool = False) -> list[Path]:
    """Copy the kit's five notebooks into folder ``target`` (created if missing).

    The copies are the user's to open and edit in JupyterLab; the runner executes them
    when ``FRAUDKIT_NOTEBOOKS_DIR`` names ``target``. Only the notebooks' own files are
    written: anything else in ``target`` is kept.

    Parameters
    ----------
    target : str or Path
        The folder to copy into.
    force : bool
        Copy into a folder that is not empty, overwriting the notebooks already there.

    Returns
    -------
    list of Path
        The copies, in pipeline order.

    Raises
    ------
    ConfigurationError
        ``target`` is a file, is the kit's own notebook folder, or is not empty (without
        ``force``).
    """
    source = config.kit_notebooks_dir()
    folder = Path(target).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"{folder} is a file; name a folder to copy the notebooks into")
    if folder == source.resolve():
        raise ConfigurationError(
            f"{folder} holds the kit's own notebooks; name another folder to copy them into"
        )
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ConfigurationError(
            f"{folder} is not empty; name a new or empty folder, or pass --force to copy "
            "into it anyway (notebooks of the same names are overwritten)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(source / NOTEBOOKS[n], folder / NOTEBOOKS[n])) for n in NOTEBOOKS]


def notebook_parameters(name: str) -> dict[str, dict[str, Any]]:
    """Return the declared parameters of a notebook: ``{name: {type, default, help}}``.

    Read from the cell tagged ``parameters`` with :mod:`ast` (papermill's own inspection
    skips annotations such as ``str | None``): ``type`` is the annotation as written,
    ``default`` the default's source text and ``help`` the trailing comment.
    """
    import nbformat

    notebook = nbformat.read(notebook_path(name), as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ConfigurationError(
            f"notebook {name!r} must have exactly one cell tagged 'parameters' (found {len(cells)})"
        )
    source = cells[0].source
    lines = source.splitlines()
    declared: dict[str, dict[str, Any]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, annotation = node.target.id, ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target, annotation = node.targets[0].id, "None"
        else:
            continue
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset :] else ""
        declared[target] = {
            "type": annotation,
            "default": ast.unparse(node.value) if node.value is not None else None,
            "help": comment,
        }
    return declared


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "None": lambda v: v is None,
}


def _accepts(type_name: str, value: Any) -> bool:
    alternatives = [t.strip() for t in type_name.replace("Optional[", "").rstrip("]").split("|")]
    known = [t for t in alternatives if t in _TYPE_CHECKS]
    # Untyped or exotic annotation: papermill cannot tell, so neither can we.
    return type_name == "None" or not known or any(_TYPE_CHECKS[t](value) for t in known)


def _coerce(value: Any) -> Any:
    # Command-line values arrive as text; read them as YAML scalars ("5000" -> 5000,
    # "true" -> True, "null" -> None), as papermill's own CLI does.
    if not isinstance(value, str):
        return value
    if value.strip() == "None":  # Python's spelling, as typed by notebook users
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return (
        parsed if isinstance(parsed, int | float | bool | list | dict) or parsed is None else value
    )


def validate_parameters(name: str, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``parameters`` against the notebook's ``parameters`` cell; return them coerced.

    Raises
    ------
    NotebookParameterError
        A name the notebook does not declare, or a value of the wrong type.
        Also a ``schema`` that is neither a preset nor a valid schema file, checked before
        any run is created.
    """
    declared = notebook_parameters(name)
    checked: dict[str, Any] = {}
    for key, raw in (parameters or {}).items():
        if key == "mlflow_run_id":
            raise NotebookParameterError("mlflow_run_id is set by the runner; do not pass it")
        if key not in declared:
            valid = ", ".join(k for k in declared if k != "mlflow_run_id")
            raise NotebookParameterError(
                f"notebook {name!r} has no parameter {key!r}; its parameters are: {valid}"
            )
        expected = declared[key]["type"]
        coerced = _coerce(raw)
        value = coerced if _accepts(expected, coerced) else raw
        if expected == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not _accepts(expected, value):
            raise NotebookParameterError(
                f"parameter {key!r} of notebook {name!r} must be {expected}, got {raw!r}"
            )
        if key == "schema" and value is not None:
            # Imported here: pandas comes with it, and `fraudkit --help` need not wait.
            from fraudkit.science.schema import TransactionSchema

            try:
                TransactionSchema.load(str(value))  # a typo fails here, not in the run
            except SchemaError as exc:
                raise NotebookParameterError(
                    f"parameter 'schema' of notebook {name!r}: {exc}"
                ) from exc
        checked[key] = value
    return checked


def _default_value(source: str | None) -> Any:
    # Defaults are literals in the kit's notebooks; anything else is recorded as written.
    if source is None:
        return None
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source


def parameter_values(name: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the values notebook ``name`` runs with: its defaults, overridden by ``parameters``.

    These are what the runner logs as the params of the run it creates (``mlflow_run_id``
    left out), so no notebook lists its parameters again.

    Raises
    ------
    NotebookParameterError
        As :func:`validate_parameters`.
    """
    declared = notebook_parameters(name)
    values = {k: _default_value(spec["default"]) for k, spec in declared.items()}
    values.update(validate_parameters(name, parameters))
    values.pop("mlflow_run_id", None)
    return values


def log_parameters(
    name: str, namespace: Mapping[str, Any], manager: MlflowManager | str | None = None
) -> dict[str, Any]:
    """Log notebook ``name``'s parameters on the active run, as the runner does headless.

    A notebook calls it once, after starting its run, with ``globals()``: run
    interactively (``mlflow_run_id`` is None) its parameter values become the run's params;
    run by :func:`fraudkit.runner.execution.run_notebook`, the runner has logged them
    already and nothing is logged.

    Parameters
    ----------
    name : str
        The notebook.
    namespace : mapping
        The notebook's globals.
    manager : MlflowManager or str, optional
        The manager whose active run gets the params; default the shared manager.

    Returns
    -------
    dict
        The notebook's parameters and their values, ``mlflow_run_id`` left out.
    """
    from fraudkit.tracking.manager import resolve_manager

    declared = notebook_parameters(name)
    values = {k: namespace[k] for k in declared if k != "mlflow_run_id" and k in namespace}
    if namespace.get("mlflow_run_id") is None:
        resolve_manager(manager).log_params(values)
    return values
