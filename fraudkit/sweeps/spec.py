"""A sweep's definition: a notebook, a grid and/or cases, shared parameters, and its points.

Plain data, read from the command line or a YAML file (:func:`load_sweep_spec`) and
expanded into the points :func:`fraudkit.sweeps.run.run_sweep` runs (:func:`expand_points`), in
the order that ends a sweep soonest on a fixed number of workers (:func:`longest_first`).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError

__all__ = [
    "SPEC_KEYS",
    "SweepSpec",
    "distinct",
    "expand_points",
    "load_sweep_spec",
    "longest_first",
    "resumed_spec",
    "spec_from_mapping",
]

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


def resumed_spec(stored: SweepSpec, given: SweepSpec, sweep_run_id: str) -> SweepSpec:
    """Return the stored spec of the sweep being resumed, checked against what was given.

    Raises
    ------
    ConfigurationError
        The command line or file gives a grid, cases, parameters or notebook other than the
        stored sweep's: ``--resume`` reruns a sweep as it was defined.
    """
    for name in ("grid", "cases", "parameters"):
        value = getattr(given, name)
        if value and value != getattr(stored, name):
            raise ConfigurationError(
                f"--resume runs sweep {sweep_run_id} as it was defined, but {name} differs from "
                "it; drop -g/-p/-f to resume, or start a new sweep"
            )
    if given.notebook and ExperimentType.parse(given.notebook).value != stored.notebook:
        raise ConfigurationError(
            f"sweep {sweep_run_id} runs notebook {stored.notebook!r}, not {given.notebook!r}"
        )
    return stored


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


def longest_first(
    pending: Sequence[int],
    points: Sequence[Mapping[str, Any]],
    seconds: Mapping[int, float],
) -> list[int]:
    """Order pending points by expected run time, longest first, learnt from finished points.

    On a fixed number of workers a sweep ends when its last point does. Started last, a long
    point keeps one worker busy while the others idle; started first, it overlaps with the
    short ones (the longest-processing-time rule). Run times are not known in advance, so
    they are learnt from the points already finished, as the mean plus one effect per varied
    parameter (a model type costs what it costs whatever the seed), fitted one parameter at
    a time on what the earlier ones left, the strongest first. A value not run yet is
    assumed as costly as the costliest value of its parameter so far, and among equal
    expectations the point with more such values goes first: what is not known yet may be
    the long one, and running it early is how it becomes known.

    Parameters
    ----------
    pending : sequence of int
        Indices of the points still to run.
    points : sequence of mapping
        Every point's varied values, by index.
    seconds : mapping
        Index -> run time in seconds of each finished point.

    Returns
    -------
    list of int
        ``pending`` reordered; in grid order while nothing has finished.
    """
    if not seconds:
        return list(pending)
    mean = statistics.fmean(seconds.values())
    residual = {index: run_time - mean for index, run_time in seconds.items()}
    names = distinct(name for index in seconds for name in points[index])
    effects: dict[str, dict[str, float]] = {}
    # One parameter at a time, the one that explains most of what is left first: in an
    # unbalanced start (a1 and b2 finished) the model type, not the seed, takes the credit.
    while len(effects) < len(names):
        fits, explained = {}, {}
        for name in (n for n in names if n not in effects):
            groups: dict[str, list[float]] = {}
            for index, left in residual.items():
                if name in points[index]:
                    groups.setdefault(_value_key(points[index][name]), []).append(left)
            fits[name] = {value: statistics.fmean(g) for value, g in groups.items()}
            # The squared run time the effect accounts for: its between-group sum of squares.
            explained[name] = sum(len(g) * fits[name][v] ** 2 for v, g in groups.items())
        name = max(explained, key=explained.__getitem__)
        effects[name] = fits[name]
        for index in residual:
            if name in points[index]:
                residual[index] -= fits[name][_value_key(points[index][name])]

    def expected(index: int) -> tuple[float, int, int]:
        total, unseen = mean, 0
        for name, value in points[index].items():
            seen = effects.get(name, {})
            key = _value_key(value)
            if key in seen:
                total += seen[key]
            else:
                total += max(seen.values(), default=0.0)
                unseen += 1
        return -total, -unseen, index

    return sorted(pending, key=expected)


def distinct(values: Iterable[Any]) -> list[Any]:
    """Return the distinct values in their first order (values may be unhashable lists)."""
    kept: list[Any] = []
    for value in values:
        if value not in kept:
            kept.append(value)
    return kept


def _value_key(value: Any) -> str:
    # Values may be lists (model_types): compare them by their JSON text.
    return json.dumps(value, sort_keys=True, default=str)
