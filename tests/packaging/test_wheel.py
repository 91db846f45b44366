"""The wheel, built as a release is and installed with pip alone, runs a notebook.

One test does what a new user does, with no other step: ``python -m build`` (the sdist,
then the wheel from it), a fresh virtualenv, ``pip install`` of the wheel with its
dependencies, and ``fraudkit run training -p n_transactions 20000`` in an empty folder
outside any checkout. The notebooks come from the wheel's package data and the kernel
from the kernelspec it installs; the store and reports land in that folder.

The virtualenv is a real fresh one, without ``--system-site-packages``: a dependency the
code needs and ``pyproject.toml`` forgets would be hidden by reusing another environment's
packages. The base interpreter has none of them, so reusing its site-packages would save
nothing anyway. The price is time: installing MLflow, JupyterLab, scikit-learn and the rest
from the local package index took about 4 minutes on a busy 2-core machine (``--no-compile``
skips byte-compiling what the run never imports), and the training run about 1 to 4
minutes, hence the ``slow`` mark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from fraudkit.runner.parameters import NOTEBOOKS

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

ROOT = Path(__file__).resolve().parents[2]
# The checkout's settings must not reach the installed kit; the run starts from nothing.
_CHECKOUT_ENV = (
    "FRAUDKIT_HOME",
    "FRAUDKIT_NOTEBOOKS_DIR",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "PYTHONPATH",
    "VIRTUAL_ENV",
)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float):
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout by ``python -m build`` (through its sdist)."""
    dist = tmp_path_factory.mktemp("dist")
    built = _run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        cwd=ROOT,
        env=dict(os.environ),
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (found,) = dist.glob("fraudkit-*.whl")
    return found


@pytest.mark.timeout(2400)
def test_the_wheel_alone_runs_training_in_an_empty_folder(wheel, tmp_path):
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    bin_dir = environment / "bin"
    env = {k: v for k, v in os.environ.items() if k not in _CHECKOUT_ENV}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    installed = _run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--no-compile", str(wheel)],
        cwd=tmp_path,
        env=env,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    folder = tmp_path / "empty"
    folder.mkdir()
    fraudkit = str(bin_dir / "fraudkit")
    training = [fraudkit, "run", "training", "-p", "n_transactions", "20000"]
    ran = _run([*training, "--quiet"], cwd=folder, env=env, timeout=1200)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "training: FINISHED" in ran.stdout
    assert (folder / "mlflow.db").is_file()
    assert list((folder / "reports" / "runs").glob("training-*/report.html"))

    # It ran the wheel's notebooks on the kernel the wheel installed, nothing of the checkout.
    where = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "from fraudkit.core.config import notebooks_dir; "
            "from jupyter_client.kernelspec import KernelSpecManager; "
            "print(notebooks_dir()); print(KernelSpecManager().find_kernel_specs()['fraudkit'])",
        ],
        cwd=folder,
        env=env,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    notebooks, kernel = map(Path, where.stdout.split())
    assert notebooks.parts[-2:] == ("fraudkit", "notebooks") and notebooks.is_relative_to(
        environment
    )
    assert kernel == environment / "share" / "jupyter" / "kernels" / "fraudkit"

    copied = _run([fraudkit, "notebooks", "copy", "my-notebooks"], cwd=folder, env=env, timeout=120)
    assert copied.returncode == 0, copied.stderr
    mine = folder / "my-notebooks"
    assert sorted(p.name for p in mine.iterdir()) == sorted(NOTEBOOKS.values())
    assert f"FRAUDKIT_NOTEBOOKS_DIR={mine}" in copied.stdout
    # The runner takes the folder it is told of: without its training notebook, it says so.
    (mine / NOTEBOOKS["training"]).unlink()
    refused = _run([*training, "--notebooks-dir", str(mine)], cwd=folder, env=env, timeout=300)
    assert refused.returncode == 1
    assert str(mine / NOTEBOOKS["training"]) in refused.stderr
