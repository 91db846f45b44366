"""A sweep's definition: a notebook, a grid and/or cases, shared parameters, and its points.

Plain data, read from the command line or a YAML file (:func:`load_sweep_spec`) and
expanded into the points :func:`fraudkit.sweep.run_sweep` runs (:func:`expand_points`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraudkit.exceptions import ConfigurationError

__all__ = ["SPEC_KEYS", "SweepSpec", "expand_points", "load_sweep_spec", "spec_from_mapping"]

#: The sections of a sweep file.
SPEC_KEYS = ("notebook", "grid", "cases", "parameters")


@dataclass(frozen=True)
class SweepSpec:
    """A sweep as written in a YAML file: a notebook, its varied and its shared parameters.

    Attributes
    ----------
    notebook : str
        The notebook (training, model_comparison, ...).
    grid : dict
        Parameter name -> the values to try; every combination is a point.
    cases : list of dict
        Explicit parameter sets (for values that hold commas); combined with each grid point.
    parameters : dict
        Parameters shared by every point.
    """

    notebook: str
    grid: dict[str, list] = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain data (what :data:`SPEC_ARTIFACT` holds)."""
        return asdict(self)


def spec_from_mapping(content: Any, source: str) -> SweepSpec:
    """Build a spec from parsed YAML or a stored ``spec.json`` (named ``source`` in errors).

    Raises
    ------
    ConfigurationError
        Not a mapping, an unknown key or a badly shaped section.
    """
    if not isinstance(content, dict):
        raise ConfigurationError(f"sweep file {source} must be a mapping with notebook: and grid:")
    unknown = sorted(set(content) - set(SPEC_KEYS))
    if unknown:
        raise ConfigurationError(
            f"sweep file {source} has unknown keys {unknown}; use: {', '.join(SPEC_KEYS)}"
        )
    grid, cases = content.get("grid") or {}, content.get("cases") or []
    parameters = content.get("parameters") or {}
    if not isinstance(grid, dict) or not isinstance(parameters, dict):
        raise ConfigurationError(
            f"sweep file {source}: grid: and parameters: must map parameter names to values"
        )
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigurationError(f"sweep file {source}: cases: must be a list of mappings")
    grid = {k: list(v) if isinstance(v, list | tuple) else [v] for k, v in grid.items()}
    return SweepSpec(
        notebook=str(content.get("notebook") or ""),
        grid=grid,
        cases=[dict(c) for c in cases],
        parameters=dict(parameters),
    )


def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Read a sweep YAML file: ``notebook:``, ``grid:`` and/or ``cases:``, ``parameters:``.

    Raises
    ------
    ConfigurationError
        Unreadable file, not a mapping, an unknown key or a badly shaped section.
    """
    try:
        content = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # PyYAML's messages span several lines
        raise ConfigurationError(f"cannot read sweep file {path}: {reason}") from exc
    return spec_from_mapping(content, str(path))


def expand_points(
    grid: Mapping[str, Sequence] | None, cases: Sequence[Mapping] | None
) -> list[dict[str, Any]]:
    """Return the sweep's points: each case combined with each combination of the grid.

    Parameters
    ----------
    grid : mapping, optional
        Parameter name -> values; the points are their Cartesian product (first name outermost).
    cases : sequence of mapping, optional
        Explicit parameter sets; with a grid, every case is combined with every grid point.

    Raises
    ------
    ConfigurationError
        Neither a grid nor cases, a grid entry without values, or a parameter both in the
        grid and in a case.
    """
    grid = dict(grid or {})
    empty = [name for name, values in grid.items() if not list(values)]
    if empty:
        raise ConfigurationError(f"grid parameters {empty} have no values; give at least one")
    if not grid and not cases:
        raise ConfigurationError("a sweep needs a grid (-g NAME V1,V2) or cases (in -f FILE)")
    names = list(grid)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    points = []
    for case in cases or [{}]:
        both = sorted(set(case) & set(names))
        if both:
            raise ConfigurationError(f"parameters {both} are both in the grid and in a case")
        points.extend({**case, **combo} for combo in combos)
    return points
