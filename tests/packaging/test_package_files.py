"""The packaging files agree with each other: pyproject.toml, environment.yml, the compose
file, the kernelspec and what the wheel carries (built for real in test_wheel.py)."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from fraudkit.runner.execution import KERNEL_DISPLAY_NAME, KERNEL_NAME
from fraudkit.runner.parameters import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _floor(requirement: Requirement) -> str:
    floors = [s.version for s in requirement.specifier if s.operator == ">="]
    assert len(floors) == 1, requirement
    return floors[0]


def _requirement(requirements: list[str], name: str) -> Requirement:
    return next(r for r in map(Requirement, requirements) if r.name == name)


def test_environment_yml_installs_the_package_as_pyproject_declares_it():
    # pyproject.toml is the one list of dependencies: conda brings Python, pip the rest.
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    pip_section = next(d["pip"] for d in dependencies if isinstance(d, dict))
    assert len(pip_section) == 1, "list dependencies in pyproject.toml, not environment.yml"
    match = re.fullmatch(r"-e \.\[([a-z,]+)\]", pip_section[0])
    assert match, pip_section
    assert set(match[1].split(",")) <= set(PROJECT["optional-dependencies"])
    pythons = [d.split("=", 1)[1] for d in dependencies if isinstance(d, str) and "python=" in d]
    assert pythons, "environment.yml pins no Python"
    # The oldest Python the package supports, so conda users test what pip users get first.
    floor = SpecifierSet(PROJECT["requires-python"])
    assert pythons == [re.sub(r"^>=", "", str(floor))]
    assert f"Programming Language :: Python :: {pythons[0]}" in PROJECT["classifiers"]


def test_compose_server_mlflow_floor_is_pyprojects():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    dockerfile = compose["services"]["mlflow"]["build"]["dockerfile_inline"]
    installed = re.findall(r'"(mlflow[^"]*)"', dockerfile)
    assert len(installed) == 1, dockerfile
    server = Requirement(installed[0])
    kit = _requirement(PROJECT["dependencies"], "mlflow")
    assert _floor(server) == _floor(kit)
    assert server.specifier == kit.specifier


def test_server_extra_brings_the_team_servers_driver():
    assert [Requirement(r).name for r in PROJECT["optional-dependencies"]["server"]] == [
        "psycopg2-binary"
    ]
    compose = (ROOT / "deploy" / "docker-compose.yml").read_text()
    assert "psycopg2-binary" in compose


def test_metadata_is_complete():
    assert PROJECT["authors"] and all(a.get("name") for a in PROJECT["authors"])
    assert (ROOT / PROJECT["readme"]).is_file()
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "the fraudkit authors" in license_text
    classifiers = set(PROJECT["classifiers"])
    assert {
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Framework :: Jupyter",
        "Topic :: Scientific/Engineering",
    } <= classifiers
    # PEP 639: the SPDX `license` replaces license classifiers (setuptools rejects both).
    assert not [c for c in classifiers if c.startswith("License ::")]


def test_every_subpackage_the_templates_and_the_notebooks_are_packaged():
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in ROOT.glob("fraudkit/**/__init__.py")
    }
    assert "fraudkit" in packages
    listed = set(SETUPTOOLS["packages"])
    assert packages <= listed, "add the new subpackage to [tool.setuptools] packages"
    data = SETUPTOOLS["package-data"]
    templates = [f.relative_to(ROOT / "fraudkit") for f in ROOT.glob("fraudkit/**/templates/*")]
    assert templates and "fraudkit.reports.templates" in listed
    assert all(any(fnmatch.fnmatchcase(str(f), g) for g in data["fraudkit"]) for f in templates)
    # The checkout's notebooks/ becomes fraudkit/notebooks/ in the wheel.
    assert SETUPTOOLS["package-dir"] == {"fraudkit.notebooks": "notebooks"}
    assert "fraudkit.notebooks" in listed
    assert data["fraudkit.notebooks"] == ["*.ipynb"]
    assert sorted(NOTEBOOKS.values()) == sorted(p.name for p in (ROOT / "notebooks").glob("*"))


def test_shipped_kernelspec_is_the_runners_kernel_on_this_python():
    (folder, files), *others = SETUPTOOLS["data-files"].items()
    assert not others and folder == f"share/jupyter/kernels/{KERNEL_NAME}"
    spec = json.loads((ROOT / files[0]).read_text())
    assert spec["display_name"] == KERNEL_DISPLAY_NAME and spec["language"] == "python"
    # A bare `python` is replaced by the interpreter that starts the kernel (jupyter_client).
    assert spec["argv"][0] == "python"
    assert spec["argv"][-4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    for notebook in NOTEBOOKS.values():
        metadata = json.loads((ROOT / "notebooks" / notebook).read_text())["metadata"]
        assert metadata["kernelspec"]["name"] == KERNEL_NAME, notebook
