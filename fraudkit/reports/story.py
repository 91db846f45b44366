"""What the kit decided, read back from the tracking store, as plain data.

Three questions a reader asks before any table:

* which version serves under each alias, since when and why:
  :func:`alias_cards`, from the recorded alias moves
  (:func:`fraudkit.tracking.registry.alias_history`) with the runs that were their evidence, and
  the key metrics of those versions with their meaning (:mod:`fraudkit.display.glossary`) and the
  share of the Bayes ceiling where the data were simulated;
* what the latest monitoring run concluded: :func:`monitoring_verdict` (drift,
  retraining recommended, how reliable the label-free estimates were);
* what each notebook of the last pipeline decided: :func:`pipeline_timeline`.

Runs are named through a ``link`` callable (run id -> :class:`RunLink`) so the caller
decides where they point: a report page, the MLflow UI, or nowhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fraudkit.core.tags import (
    ERROR_TAG,
    EXPERIMENT_TYPE_TAG,
    FAILED_CELL_TAG,
    MODEL_TYPE_TAG,
    PARENT_RUN_TAG,
    PIPELINE_TAG,
    SUMMARY_TAG_PREFIX,
)
from fraudkit.display.glossary import describe, format_value, label

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = [
    "CARD_METRICS",
    "NOT_RUN",
    "TITLES",
    "AliasCard",
    "AliasMove",
    "KeyMetric",
    "RunLink",
    "TimelineStep",
    "Verdict",
    "alias_cards",
    "is_top_level",
    "list_windows",
    "monitoring_verdict",
    "pipeline_timeline",
    "run_entry",
]

NOT_RUN = "NOT_RUN"
# The metrics shown for the versions holding an alias, in this order.
CARD_METRICS = tuple(
    "average_precision bayes_average_precision share_of_bayes_auprc roc_auc "
    "card_precision_at_k alert_budget_k alerts_per_day fraud_precision fraud_recall threshold "
    "expected_to_actual_fraud n_fraud".split()
)
HEADLINE_METRICS = ("average_precision", "share_of_bayes_auprc")
# The notebooks in pipeline order, as a reader names them.
TITLES = {
    "training": "Training",
    "model_comparison": "Model comparison",
    "ab_testing": "A/B test",
    "monitoring": "Monitoring",
    "retraining": "Retraining",
}
ALIAS_ORDER = ("production", "staging")
MAX_EARLIER_MOVES = 6


@dataclass(frozen=True)
class RunLink:
    """A run as a page names it: its report (a relative path) and MLflow UI page, if any."""

    run_id: str
    name: str
    report: str | None = None
    url: str | None = None


Linker = Callable[[str | None], RunLink | None]


@dataclass(frozen=True)
class AliasMove:
    """One recorded move of an alias (see :func:`fraudkit.tracking.registry.alias_history`)."""

    alias: str
    version: str
    previous: str | None
    time: str
    user: str
    action: str
    reason: str | None
    gate: str | None
    evidence: RunLink | None


@dataclass(frozen=True)
class AliasCard:
    """The version holding one alias: what it is, since when and why.

    ``move`` is the recorded move that gave the alias to this version (None when the alias
    was set outside fraudkit); ``earlier`` the alias's other moves, newest first;
    ``metrics`` the headline numbers, label -> formatted value; ``model_card`` the
    version's model card page, relative to the index (None: none written).
    """

    model: str
    alias: str
    version: str
    model_type: str | None
    created: str
    source: RunLink | None
    move: AliasMove | None
    earlier: tuple[AliasMove, ...] = ()
    metrics: dict[str, str] = field(default_factory=dict)
    model_card: str | None = None


@dataclass(frozen=True)
class KeyMetric:
    """One key metric of the alias holders, with what it means; ``values`` follow the cards."""

    name: str
    label: str
    meaning: str
    unit: str
    better: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """What a monitoring run concluded; windows are numbered from 0 as in the run's steps."""

    run: RunLink
    started: str
    model_version: str | None
    n_windows: int
    drift_windows: tuple[int, ...]
    score_drift_windows: tuple[int, ...]
    drop_windows: tuple[int, ...]
    retraining_recommended: bool | None
    estimate_windows: tuple[int, ...]
    unreliable_windows: tuple[int, ...]
    notes: str | None

    @property
    def drift(self) -> bool:
        """Whether any window drifted, in its features or in the model's scores."""
        return bool(self.drift_windows or self.score_drift_windows)

    @property
    def unreliable_estimates(self) -> tuple[int, ...]:
        """The windows judged on a label-free estimate that was unreliable."""
        return tuple(sorted(set(self.estimate_windows) & set(self.unreliable_windows)))

    @property
    def reliable(self) -> bool:
        """Whether every window judged on a label-free estimate had a reliable one."""
        return not self.unreliable_estimates


@dataclass(frozen=True)
class TimelineStep:
    """What one notebook of a pipeline decided; ``status`` is the run's, or NOT_RUN."""

    notebook: str
    title: str
    status: str
    decision: str
    flags: tuple[tuple[str, bool], ...] = ()
    run: RunLink | None = None
    started: str | None = None


# -- reading runs ----------------------------------------------------------------------------


def run_entry(run: Run, name: str) -> Any:
    """A run's value of ``name``: its summary entry (a tag string), else metric, else param."""
    if SUMMARY_TAG_PREFIX + name in run.data.tags:
        return run.data.tags[SUMMARY_TAG_PREFIX + name]
    if name in run.data.metrics:
        return run.data.metrics[name]
    return run.data.params.get(name)


def is_top_level(run: Run) -> bool:
    """Whether ``run`` is a notebook's own run, not one of its nested runs."""
    return PARENT_RUN_TAG not in run.data.tags


def _truth(value: Any) -> bool | None:
    """A flag as logged (bool, 0/1 metric, "True"/"yes" tag); None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "1.0")
    return bool(value)


def _absent(value: Any) -> bool:
    return value is None or str(value) in ("", "None", "none", "nan")


def _when(moment: Any) -> str:
    """A time as ``2026-01-31 14:05 UTC``, from epoch milliseconds or a datetime."""
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def list_windows(numbers: Iterable[int]) -> str:
    """Window numbers in words: ``"none"``, ``"window 3"``, ``"windows 3, 4 and 5"``."""
    items = [str(n) for n in numbers]
    if not items:
        return "none"
    if len(items) == 1:
        return f"window {items[0]}"
    return f"windows {', '.join(items[:-1])} and {items[-1]}"


# -- who serves ------------------------------------------------------------------------------


def _gate_text(gate: Any, previous: str | None) -> str | None:
    """What a promotion gate compared, in a sentence."""
    if not isinstance(gate, Mapping):
        return None
    metric = str(gate.get("metric", ""))
    new = format_value(metric, gate.get("candidate_value"))
    old = format_value(metric, gate.get("holder_value"))
    return (
        f"{label(metric)} {new} against {old} of version {previous} on "
        f"{gate.get('dataset')} ({gate.get('source')})"
    )


def _moves(records: list[dict[Any, Any]], alias: str, link: Linker) -> list[AliasMove]:
    """The recorded moves of ``alias`` among a model's move records (oldest first), newest first."""
    moves = []
    for record in reversed([r for r in records if r["alias"] == alias]):
        previous = None if _absent(record["from"]) else str(record["from"])
        evidence = None if _absent(record["evidence_run_id"]) else record["evidence_run_id"]
        moves.append(
            AliasMove(
                alias=alias,
                version=str(record["to"]),
                previous=previous,
                time=_when(record["time"].to_pydatetime()),
                user=str(record["user"]),
                action=str(record["action"]),
                reason=None if _absent(record["reason"]) else str(record["reason"]),
                gate=_gate_text(record["gate"], previous),
                evidence=link(evidence),
            )
        )
    return moves


def _holder_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """A version's key metrics, with its share of the Bayes ceiling when both are known."""
    values = {name: metrics[name] for name in CARD_METRICS if name in metrics}
    ceiling = values.get("bayes_average_precision")
    if "share_of_bayes_auprc" not in values and ceiling and "average_precision" in values:
        values["share_of_bayes_auprc"] = values["average_precision"] / ceiling
    return values


def alias_cards(
    client: MlflowClient, link: Linker, find: Callable[[str], Run | None]
) -> tuple[list[AliasCard], list[KeyMetric]]:
    """One card per alias of every registered model, and the holders' key metrics.

    Parameters
    ----------
    client : MlflowClient
    link : callable
        Run id (or None) -> :class:`RunLink` (or None): how runs are named and linked.
    find : callable
        Run id -> the run (None when missing): the caller's lookup, which may cache.

    Returns
    -------
    tuple
        The cards (production first, then staging, then other aliases by name) and one
        :class:`KeyMetric` per metric of :data:`CARD_METRICS` some holder logged, its
        values in the cards' order.
    """
    from fraudkit.tracking.registry import alias_history
    from fraudkit.tracking.store import paged

    cards, holders = [], []
    for model in paged(client.search_registered_models):
        aliases = dict(model.aliases or {})
        # Every alias's moves at once: alias_history(alias=) knows only the stages' aliases.
        records = alias_history(client, model.name).to_dict("records") if aliases else []
        order = [a for a in ALIAS_ORDER if a in aliases] + sorted(set(aliases) - set(ALIAS_ORDER))
        for alias in order:
            version = client.get_model_version(model.name, str(aliases[alias]))
            run = find(version.run_id) if version.run_id else None
            model_type = (version.tags or {}).get(MODEL_TYPE_TAG) or (
                run.data.params.get("model_type") if run else None
            )
            moves = _moves(records, alias, link)
            current = next((m for m in moves if m.version == str(version.version)), None)
            values = _holder_metrics(run.data.metrics if run else {})
            cards.append(
                AliasCard(
                    model=model.name,
                    alias=alias,
                    version=str(version.version),
                    model_type=model_type,
                    created=_when(version.creation_timestamp),
                    source=link(version.run_id),
                    move=current,
                    earlier=tuple(m for m in moves if m is not current)[:MAX_EARLIER_MOVES],
                    metrics={
                        label(name): format_value(name, values[name])
                        for name in HEADLINE_METRICS
                        if name in values
                    },
                )
            )
            holders.append(values)
    key_metrics = []
    for name in CARD_METRICS:
        info = describe(name)
        if info is not None and any(name in values for values in holders):
            texts = tuple(format_value(name, values.get(name)) for values in holders)
            key_metrics.append(
                KeyMetric(name, info.label, info.meaning, info.unit, info.better, texts)
            )
    return cards, key_metrics


# -- what monitoring saw ---------------------------------------------------------------------


def _windows_where(client: MlflowClient, run_id: str, key: str, wanted: bool) -> tuple[int, ...]:
    """The windows (steps) where a per-window 0/1 metric of a monitoring run is ``wanted``."""
    latest: dict[int, tuple[int, float]] = {}
    for m in client.get_metric_history(run_id, key):
        if m.step not in latest or m.timestamp >= latest[m.step][0]:
            latest[m.step] = (m.timestamp, m.value)
    return tuple(step for step, (_, value) in sorted(latest.items()) if bool(value) == wanted)


def monitoring_verdict(client: MlflowClient, run: Run, link: Linker) -> Verdict:
    """What a monitoring run concluded, from its summary and its per-window metrics.

    Parameters
    ----------
    client : MlflowClient
    run : mlflow.entities.Run
        A run of the monitoring notebook.
    link : callable
        Run id -> :class:`RunLink`.

    Returns
    -------
    Verdict
    """
    run_id = run.info.run_id

    def where(key: str, wanted: bool = True) -> tuple[int, ...]:
        return _windows_where(client, run_id, key, wanted)

    n_windows, version = run_entry(run, "n_windows"), run_entry(run, "model_version")
    notes = run_entry(run, "window_warnings")
    return Verdict(
        run=link(run_id) or RunLink(run_id, run_id),
        started=_when(run.info.start_time),
        model_version=None if _absent(version) else str(version),
        n_windows=0 if _absent(n_windows) else int(float(n_windows)),
        drift_windows=where("data_drift"),
        score_drift_windows=where("prediction_drift"),
        drop_windows=where("alert_performance_drop"),
        retraining_recommended=_truth(run_entry(run, "retraining_recommended")),
        estimate_windows=where("labels_used", wanted=False),
        unreliable_windows=where("estimate_reliable", wanted=False),
        notes=None if _absent(notes) else str(notes),
    )


# -- what the pipeline decided -----------------------------------------------------------------


def _failure(run: Run) -> str:
    where = run.data.tags.get(FAILED_CELL_TAG)
    error = (run.data.tags.get(ERROR_TAG) or "no error recorded").splitlines()[0]
    return f"{run.info.status.capitalize()}{f' in cell {where}' if where else ''}: {error}"


def _ab_sentence(run: Run, kind: str) -> str:
    """The winner of an A/B comparison, its change and p-value, in a sentence."""
    # Runs logged before the renaming hold `improvement` (relative in both notebooks).
    names = ("auprc_difference" if kind == "retraining" else "relative_improvement", "improvement")
    name = next((n for n in names if run_entry(run, n) is not None), names[0])
    p_value = format_value("p_value", run_entry(run, "p_value"))
    winner = run_entry(run, "winner")
    if _absent(winner):
        return f"No significant winner (p = {p_value})"
    change = format_value(name, run_entry(run, name))
    return f"Winner {winner}: {label(name)} {change} (p = {p_value})"


def _decision(client: MlflowClient, run: Run, link: Linker) -> tuple[str, tuple]:
    """What a finished notebook run decided, in a sentence, and its yes/no flags."""
    kind = run.data.tags.get(EXPERIMENT_TYPE_TAG, "")
    promoted = bool(_truth(run_entry(run, "promoted")))
    if kind == "training":
        aliases = [a for a in str(run_entry(run, "aliases") or "").split(",") if a]
        named = f" as {' and '.join(aliases)}" if aliases else ""
        sentence = f"Registered version {run_entry(run, 'model_version')}{named}."
        return sentence, (("promoted to production", "production" in aliases),)
    if kind == "model_comparison":
        registered = run_entry(run, "registered_version")
        best = format_value("best_average_precision", run_entry(run, "best_average_precision"))
        sentence = (
            f"Best of {format_value('n_candidates', run_entry(run, 'n_candidates'))} "
            f"candidates: {run_entry(run, 'best_model_type')} (AUPRC {best})"
        )
        sentence += f"; registered as version {registered}." if registered else "."
        return sentence, (("registered", registered is not None),)
    if kind == "ab_testing":
        return f"{_ab_sentence(run, kind)}.", (("promoted", promoted),)
    if kind == "retraining":
        sentence = f"Retrained as version {run_entry(run, 'new_version')}. "
        sentence += _ab_sentence(run, kind)
        refused = run_entry(run, "promotion_refused")
        sentence += "" if _absent(refused) else f"; promotion refused: {refused}"
        return f"{sentence}.", (("retrained", True), ("promoted", promoted))
    if kind == "monitoring":
        verdict = monitoring_verdict(client, run, link)
        drifted = sorted(set(verdict.drift_windows) | set(verdict.score_drift_windows))
        recommended = bool(verdict.retraining_recommended)
        sentence = (
            f"Watched version {verdict.model_version} over {verdict.n_windows} windows: drift "
            f"in {list_windows(drifted)}; retraining "
            f"{'recommended' if recommended else 'not recommended'}."
        )
        return sentence, (("drift", verdict.drift), ("retraining recommended", recommended))
    return "Finished.", ()


def pipeline_timeline(
    client: MlflowClient, runs: Iterable[Run], link: Linker
) -> tuple[str | None, list[TimelineStep]]:
    """What each notebook of the newest pipeline decided, in pipeline order.

    Parameters
    ----------
    client : MlflowClient
    runs : iterable of mlflow.entities.Run
        Notebook runs; those tagged with a pipeline id (nested runs left out) are read.
    link : callable
        Run id -> :class:`RunLink`.

    Returns
    -------
    tuple
        The newest pipeline's id (None without any) and one step per notebook: its run's
        decision, or why it did not run (an earlier notebook failed; monitoring did not
        recommend retraining).
    """
    tagged = [r for r in runs if r.data.tags.get(PIPELINE_TAG) and is_top_level(r)]
    if not tagged:
        return None, []
    pipeline = max(tagged, key=lambda r: r.info.start_time).data.tags[PIPELINE_TAG]
    mine = sorted(
        (r for r in tagged if r.data.tags[PIPELINE_TAG] == pipeline),
        key=lambda r: r.info.start_time,
    )
    by_kind = {r.data.tags.get(EXPERIMENT_TYPE_TAG, ""): r for r in mine}
    steps: list[TimelineStep] = []
    failed = None
    for kind, title in TITLES.items():
        run = by_kind.get(kind)
        if run is not None:
            finished = run.info.status == "FINISHED"
            decision, flags = _decision(client, run, link) if finished else (_failure(run), ())
            run_link, started = link(run.info.run_id), _when(run.info.start_time)
            steps.append(
                TimelineStep(kind, title, run.info.status, decision, flags, run_link, started)
            )
            failed = failed or (None if finished else title.lower())
        elif failed:
            steps.append(TimelineStep(kind, title, NOT_RUN, f"Not run: {failed} failed."))
        elif kind == "retraining" and "monitoring" in by_kind:
            why = "Not run: monitoring did not recommend retraining."
            steps.append(TimelineStep(kind, title, NOT_RUN, why, (("retrained", False),)))
    return pipeline, steps
