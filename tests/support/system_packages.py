"""The Debian packages some tests drive (PostgreSQL, Chromium): where they are, and their install.

``make system-packages`` (run first by ``make test``) runs this file as a script, which
installs with apt whatever is missing and does nothing when all is there. Tests never
install: they call :func:`postgres_bindir` or :func:`chromium`, which fail with a message
naming ``make system-packages``, so a green run always means the servers and the browser
really ran, and a red one says how to fix it.

Standard library only: the Makefile runs it before the virtualenv exists.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "PACKAGES",
    "MissingSystemPackageError",
    "chromium",
    "find_chromium",
    "find_postgres_bindir",
    "install_missing",
    "postgres_bindir",
]

CHROMIUM = Path("/usr/bin/chromium")
# How the browser tests launch it: as root Chromium needs --no-sandbox; the network flags
# stop its background calls to Google, which this machine's closed network refuses (noise in
# the console otherwise).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class MissingSystemPackageError(RuntimeError):
    """A program a test drives is not installed; the message says how to install it."""


def find_postgres_bindir() -> Path | None:
    """Directory of the PostgreSQL server programs (initdb, pg_ctl), newest version first."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def find_chromium() -> Path | None:
    """Debian's Chromium, which Playwright drives (it cannot download a browser of its own)."""
    return CHROMIUM if CHROMIUM.exists() else None


# Debian package -> how to find what it provides.
PACKAGES: dict[str, Callable[[], Path | None]] = {
    "postgresql": find_postgres_bindir,
    "chromium": find_chromium,
}


def _require(package: str, what: str) -> Path:
    found = PACKAGES[package]()
    if found is None:
        raise MissingSystemPackageError(
            f"{what} is not installed; run `make system-packages` "
            f"(it installs the Debian package {package!r} with apt)"
        )
    return found


def postgres_bindir() -> Path:
    """The PostgreSQL server programs' directory.

    Raises
    ------
    MissingSystemPackageError
        PostgreSQL is not installed; the message names ``make system-packages``.
    """
    return _require("postgresql", "PostgreSQL (initdb, pg_ctl)")


def chromium() -> Path:
    """The Chromium executable.

    Raises
    ------
    MissingSystemPackageError
        Chromium is not installed; the message names ``make system-packages``.
    """
    return _require("chromium", f"Chromium ({CHROMIUM})")


def install_missing() -> list[str]:
    """``apt-get install`` the packages whose programs are missing; return their names.

    Quick when everything is present: nothing is run then, not even ``apt-get update``.

    Raises
    ------
    MissingSystemPackageError
        apt is unavailable or not allowed (not root and no password-less sudo), the
        installation failed, or a package did not provide its program.
    """
    missing = [package for package, find in PACKAGES.items() if find() is None]
    if not missing:
        return []
    names = " ".join(missing)
    if shutil.which("apt-get") is None:
        raise MissingSystemPackageError(
            f"missing {names} and there is no apt-get to install it with; "
            "install it with your system's package manager"
        )
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo"):
        prefix = ["sudo", "-n"]  # never prompt: CI has no one to type a password
    else:
        raise MissingSystemPackageError(f"missing {names}; run `apt-get install {names}` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        completed = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, env=env, timeout=900
        )
        if completed.returncode != 0:
            raise MissingSystemPackageError(
                f"`{' '.join(command)}` failed: {(completed.stderr or completed.stdout)[-2000:]}"
            )
    still = [package for package in missing if PACKAGES[package]() is None]
    if still:
        raise MissingSystemPackageError(
            f"installed {' '.join(still)}, but the programs it should provide are missing"
        )
    return missing


if __name__ == "__main__":
    try:
        installed = install_missing()
    except MissingSystemPackageError as exc:
        sys.exit(f"make system-packages: {exc}")
    print(f"installed: {' '.join(installed)}" if installed else "system packages: all present")
