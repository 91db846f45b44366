"""The package's top level: every public name resolves, lazily, and the version is real."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import fraudkit


def test_every_public_name_resolves() -> None:
    for name in fraudkit.__all__:
        assert getattr(fraudkit, name) is not None, name
    assert dir(fraudkit) == sorted(fraudkit.__all__)


def test_version_comes_from_the_package_metadata() -> None:
    assert fraudkit.__version__ == importlib.metadata.version("fraudkit")


def test_importing_fraudkit_loads_no_mlflow_until_a_name_needs_it() -> None:
    code = (
        "import sys, fraudkit; fraudkit.TransactionSimulator; fraudkit.detect_drift; "
        "print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_module_declares_its_public_names() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(fraudkit.__path__, "fraudkit."):
        if info.name.endswith("__main__"):
            continue  # entry points run the CLI on import
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"
