"""The import contracts in pyproject.toml: kept by the tree, and broken by a forbidden import.

``lint-imports`` (import-linter) checks them in ``make lint``; these tests make a broken
contract a failing test too, and prove the contracts really see function-level imports.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports reads the contracts from the working directory's pyproject.toml and puts
    # that directory first on sys.path, so the fraudkit it analyses is the one in `folder`.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_project(tmp_path: Path) -> Path:
    """Copy pyproject.toml and the package to ``tmp_path``; return the package's folder."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(
        ROOT / "fraudkit", tmp_path / "fraudkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path / "fraudkit"


def test_the_tree_keeps_every_import_contract():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract", "says"),
    [
        ("fraudkit.science.metrics", "import mlflow", "Core, science and display", "import"),
        ("fraudkit.core.config", "import click", "Core, science and display", "import"),
        (
            "fraudkit.science.data",
            "from fraudkit.tracking.manager import mlflow_manager",
            "Layers",
            "import",
        ),
        ("fraudkit.reports.index", "from fraudkit.sweeps import run", "Layers", "import"),
        ("fraudkit.tracking.registry", "from fraudkit.cli import main", "Layers", "import"),
        ("fraudkit", "import fraudkit.cli", "Only the entry points", "import"),
        # A cycle inside one subpackage: data imports metrics at module level.
        ("fraudkit.science.metrics", "from fraudkit.science import data", "No cycle", "cycle"),
        (
            "fraudkit.tracking.store",
            "from fraudkit.tracking.manager import mlflow_manager",
            "No cycle",
            "cycle",
        ),
    ],
)
def test_a_forbidden_import_inside_a_function_breaks_a_contract(
    tmp_path, module, statement, contract, says
):
    package = _copy_project(tmp_path)
    parts = module.split(".")[1:]
    source = package.joinpath(*parts).with_suffix(".py") if parts else package / "__init__.py"
    source.write_text(source.read_text() + f"\n\ndef _sneaky():\n    {statement}\n")
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken
    if says == "import":
        assert "is not allowed to import" in broken
        assert f"{module} -> " in broken
    else:
        assert "No cycles are allowed in" in broken
