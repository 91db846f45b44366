"""Debian packages some tests drive (PostgreSQL, Chromium), installed with apt when missing.

CI starts from a machine that may lack them; the tests install what they need instead of
skipping, so a green run always means the servers and the browser really ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path


def ensure_debian_package(package: str, find: Callable[[], Path | None]) -> Path:
    """Return ``find()``; when it finds nothing, ``apt-get install`` ``package`` first.

    Parameters
    ----------
    package : str
        Debian package that provides the program.
    find : callable
        Returns the program's path, or None when it is not installed.

    Raises
    ------
    RuntimeError
        apt is unavailable or not allowed (not root and no password-less sudo), the
        installation failed, or the package did not provide the program.
    """
    found = find()
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{package} is missing and there is no apt-get to install it with")
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo"):
        prefix = ["sudo", "-n"]  # never prompt: a test run has no one to type a password
    else:
        raise RuntimeError(f"{package} is missing; install it with `apt-get install {package}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        completed = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, env=env, timeout=900
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed: {(completed.stderr or completed.stdout)[-2000:]}"
            )
    found = find()
    if found is None:
        raise RuntimeError(f"installed {package}, but the program it should provide is missing")
    return found
