"""A model card: what a registered version is for, what it was measured on and who moved it.

Pure rendering. :mod:`fraudkit.tracking.model_cards` gathers the facts when a version is
registered (:class:`ModelCard` holds them with the alias moves and the run links) and this
module writes them as Markdown, and as HTML rendered from that Markdown, so the two say the
same thing. Nothing here reads the clock or the store: the same card renders to the same
bytes, every time.

Every number is a Markdown reference link to the run it came from (``[0.81][r1]`` with
``[r1]: <run's MLflow UI page>`` at the end).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from fraudkit.display.glossary import format_value, label

__all__ = ["KNOWN_LIMITS", "RELIABILITY_FILE", "ModelCard", "card_html", "card_markdown"]

#: The reliability diagram's file beside ``model_card.md`` (inlined in the HTML).
RELIABILITY_FILE = "reliability.svg"

#: What every kit model cannot do, each with the methodology page that says why.
KNOWN_LIMITS: tuple[tuple[str, str], ...] = (
    (
        "Its numbers were measured on one test period. Fraud adapts, so performance drifts; "
        "watch it with the monitoring notebook",
        "methodology/drift",
    ),
    (
        "Labels arrive weeks late: recent precision and recall are estimates until the "
        "chargebacks are in",
        "methodology/label-free-estimates",
    ),
    (
        "Numbers resting on fewer than 30 frauds are mostly noise; the warnings below name any",
        "methodology/small-samples",
    ),
    (
        "Its probabilities hold for traffic like the calibration period's; the expected "
        "against actual fraud count is the check",
        "methodology/calibration",
    ),
    (
        "Two versions' metrics compare only on the same data (the dataset digest says which)",
        "methodology/same-data",
    ),
    (
        "Reasons explain the model's score, not the fraud: they rank the features by how far "
        "each pushed the score up",
        "methodology/reasons",
    ),
)

_HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1f2933}table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}"
    "td:nth-child(n+2){font-variant-numeric:tabular-nums}code{background:#f3f4f6;"
    "padding:0 .2rem}svg{max-width:100%;height:auto}"
)


@dataclass(frozen=True)
class ModelCard:
    """Everything a model card says, ready to render.

    Attributes
    ----------
    facts : dict
        Gathered at registration (JSON, see :func:`fraudkit.tracking.model_cards.card_facts`):
        ``model``, ``threshold``, ``training``, ``evaluation``, ``metrics``,
        ``calibration``, ``importances``, ``warnings``.
    moves : list of dict
        The version's alias moves, oldest first (the records of
        :func:`fraudkit.tracking.registry.alias_history`, times as text).
    links : dict
        Run id -> the page a number from that run links to (its MLflow UI page; its
        report in the report index); a run without one is named, not linked.
    reliability_svg : str, optional
        The reliability diagram, an SVG document.
    """

    facts: Mapping[str, Any]
    moves: Sequence[Mapping[str, Any]] = ()
    links: Mapping[str, str] = field(default_factory=dict)
    reliability_svg: str | None = None

    @property
    def run_ids(self) -> list[str]:
        """The runs the card's numbers come from: the version's, then the moves' evidence."""
        evidence = [m.get("evidence_run_id") for m in self.moves]
        runs = [self.facts["model"]["run_id"], *(run for run in evidence if run)]
        return list(dict.fromkeys(runs))


class _Refs:
    """Numbered reference labels for the runs a card links to, in order of first use."""

    def __init__(self, links: Mapping[str, str]):
        self.links = links
        self.used: dict[str, str] = {}

    def number(self, value: Any, run_id: str | None, name: str = "") -> str:
        text = _cell(format_value(name, value) if name else _plain(value))
        return self.wrap(text, run_id)

    def wrap(self, text: str, run_id: str | None) -> str:
        if not run_id or run_id not in self.links:
            return text
        ref = self.used.setdefault(run_id, f"r{len(self.used) + 1}")
        return f"[{text}][{ref}]"

    def run(self, run_id: str | None) -> str:
        return self.wrap(f"`{run_id}`", run_id) if run_id else "none"

    def definitions(self) -> list[str]:
        return [f'[{ref}]: {self.links[run]} "run {run}"' for run, ref in self.used.items()]


def _plain(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell (and free of raw HTML)."""
    return (
        str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _intended_use(facts: Mapping[str, Any], refs: _Refs) -> list[str]:
    model, threshold = facts["model"], facts["threshold"]
    run = model["run_id"]
    return [
        "## Intended use and the decision it makes",
        "",
        f"Scores card transactions in the `{_cell(model['schema'])}` schema for fraud. For "
        "each transaction the served model returns `fraud_probability`, and an `alert` when "
        f"that probability is at or above the threshold, "
        f"{refs.number(threshold['value'], run, 'threshold')}: "
        "the transaction goes to an investigator, with the three features that pushed its "
        "score up the most as reasons. It supports a person's review; it is not meant to "
        "decline a transaction on its own.",
        "",
        *_table(
            ["what", "value"],
            [
                ["registered model", f"`{_cell(model['name'])}` version {model['version']}"],
                ["logged model", f"`{model['model_id']}`"],
                ["model type", _cell(model.get("model_type") or model["estimator"])],
                ["estimator", f"`{_cell(model['estimator'])}`"],
                ["registered", model["registered"]],
                ["training run", refs.run(run)],
            ],
        ),
    ]


def _data_rows(part: Mapping[str, Any], refs: _Refs, run: str) -> list[str]:
    period = "unknown"
    if part.get("start") is not None:
        period = f"{refs.wrap(_cell(part['start']), run)} to {refs.wrap(_cell(part['end']), run)}"
    frauds = part.get("frauds")
    return [
        f"`{_cell(part['name'])}`",
        f"`{part['fingerprint']}`",
        period,
        refs.number(part["rows"], run),
        refs.number(frauds, run) if frauds is not None else "not recorded",
    ]


def _data(facts: Mapping[str, Any], refs: _Refs) -> list[str]:
    run = facts["model"]["run_id"]
    parts = [(role, facts[key]) for role, key in (("training", "training"), ("test", "evaluation"))]
    rows = [[role, *_data_rows(part, refs, run)] for role, part in parts if part]
    lines = ["## Data", ""]
    if not rows:
        return [*lines, "No training or evaluation data was recorded with this version.", ""]
    lines.append(
        "The fingerprint is the kit's digest of the frame's content "
        "(`fraudkit.science.data.data_fingerprint`): equal digests, equal data."
    )
    lines.append("")
    return lines + _table(["role", "dataset", "fingerprint", "period", "rows", "frauds"], rows)


def _metrics(facts: Mapping[str, Any], refs: _Refs) -> list[str]:
    run = facts["model"]["run_id"]
    rows = [
        [
            _cell(label(m["name"])),
            f"`{m['name']}`",
            refs.number(m["value"], run, m["name"]),
            _cell(m["dataset"]),
        ]
        for m in facts["metrics"]
    ]
    lines = ["## Evaluation metrics", ""]
    others = facts.get("unattributed_metrics", 0)
    note = (
        f"{refs.number(others, run)} more metrics of the run name no dataset; they are on "
        "its page, not here."
        if others
        else ""
    )
    if not rows:
        return [*lines, "No metrics with a dataset were logged with this version.", note, ""]
    return (
        lines
        + _table(["metric", "name", "value", "measured on"], rows)
        + ([note, ""] if note else [])
    )


def _calibration(facts: Mapping[str, Any], refs: _Refs, has_figure: bool) -> list[str]:
    calibration, run = facts.get("calibration"), facts["model"]["run_id"]
    lines = ["## Calibration", ""]
    if not calibration:
        return [*lines, "Not measured: the version was registered without evaluation data.", ""]
    lines += [
        f"On `{_cell(calibration['dataset'])}`, the probabilities add up to "
        f"{refs.number(calibration['expected'], run)} expected frauds against "
        f"{refs.number(calibration['actual'], run)} that happened (Brier score "
        f"{refs.number(calibration['brier_score'], run)}, expected calibration error "
        f"{refs.number(calibration['expected_calibration_error'], run)}). By probability band:",
        "",
    ]
    rows = [
        [
            f"{b['low']:.1f}–{b['high']:.1f}",
            refs.number(b["rows"], run),
            refs.number(b["expected"], run),
            refs.number(b["actual"], run),
        ]
        for b in calibration["bins"]
    ]
    lines += _table(["fraud probability", "rows", "expected frauds", "actual frauds"], rows)
    if has_figure:
        lines += [
            f"![Reliability diagram: observed fraud rate by probability band]({RELIABILITY_FILE})",
            "",
        ]
    return lines


def _threshold(facts: Mapping[str, Any], refs: _Refs) -> list[str]:
    threshold, run = facts["threshold"], facts["model"]["run_id"]
    rule = threshold.get("rule")
    if rule:
        why = f"Chosen on the validation period by the `{_cell(rule)}` rule"
        if threshold.get("target") is not None:
            why += f" with target {refs.number(threshold['target'], run)}"
        if rule == "cost" and threshold.get("review_cost") is not None:
            why += f" and a review cost of {refs.number(threshold['review_cost'], run)} an alert"
        why += (
            ": the precision rule keeps the review queue trustworthy, the recall rule catches "
            "a share of fraud, the cost rule weighs each alert's review against each missed "
            "fraud's amount."
        )
    else:
        why = f"Given as `{threshold['source']}` when the version was logged; no rule was recorded."
    return [
        "## Threshold",
        "",
        f"Alerts at fraud probability ≥ {refs.number(threshold['value'], run, 'threshold')}. {why}",
        "",
    ]


def _warnings(facts: Mapping[str, Any]) -> list[str]:
    lines = ["## Small-sample warnings", ""]
    warnings = facts.get("warnings") or []
    if not warnings:
        return [*lines, "None: every period holds at least 30 frauds.", ""]
    return lines + [f"- {_cell(w)}." for w in warnings] + [""]


def _limits() -> list[str]:
    lines = ["## Known limits", ""]
    lines += [f"- {text} (`docs/{page}.md`)." for text, page in KNOWN_LIMITS]
    return [*lines, ""]


def _features(facts: Mapping[str, Any], refs: _Refs) -> list[str]:
    importances, run = facts.get("importances"), facts["model"]["run_id"]
    lines = ["## Features and their global importance", ""]
    if not importances:
        return [*lines, "Not measured.", ""]
    lines += [f"{_cell(importances['method'])}.", ""]
    rows = [
        [str(rank), f"`{_cell(name)}`", refs.number(value, run)]
        for rank, (name, value) in enumerate(importances["values"], start=1)
    ]
    return lines + _table(["rank", "feature", "importance"], rows)


def _moves(card: ModelCard, refs: _Refs) -> list[str]:
    version, run = str(card.facts["model"]["version"]), card.facts["model"]["run_id"]
    lines = ["## Alias history", ""]
    if not card.moves:
        return [*lines, f"No alias has pointed at version {version}.", ""]
    rows = []
    for move in card.moves:
        change = f"v{move['from']} → v{move['to']}" if move.get("from") else f"v{move['to']}"
        gate = move.get("gate") or {}
        evidence = move.get("evidence_run_id")
        why = _cell(move.get("reason") or "no reason recorded")
        if gate.get("metric"):
            # The gate's numbers come from the versions' runs, or from the evidence run.
            why += (
                f" (gate: {_cell(gate['metric'])} "
                f"{refs.number(gate['candidate_value'], evidence or run, gate['metric'])} "
                f"against {refs.number(gate['holder_value'], evidence or run, gate['metric'])} "
                f"on {_cell(gate.get('dataset') or 'unknown data')})"
            )
        rows.append(
            [
                _cell(move["time"]),
                f"`{_cell(move['alias'])}`",
                change,
                _cell(move["action"]),
                _cell(move["user"]),
                why,
                refs.run(evidence),
            ]
        )
    header = ["when", "alias", "move", "action", "who", "why", "evidence run"]
    return lines + _table(header, rows)


def card_markdown(card: ModelCard) -> str:
    """The card as Markdown (CommonMark with tables).

    Parameters
    ----------
    card : ModelCard

    Returns
    -------
    str
        The same text for the same card; numbers link to their runs.
    """
    model = card.facts["model"]
    refs = _Refs(card.links)
    lines = [f"# Model card: {_cell(model['name'])} version {model['version']}", ""]
    lines += _intended_use(card.facts, refs)
    lines += _data(card.facts, refs)
    lines += _metrics(card.facts, refs)
    lines += _calibration(card.facts, refs, card.reliability_svg is not None)
    lines += _threshold(card.facts, refs)
    lines += _warnings(card.facts)
    lines += _limits()
    lines += _features(card.facts, refs)
    lines += _moves(card, refs)
    lines += refs.definitions()
    return "\n".join(lines).rstrip("\n") + "\n"


def card_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page, rendered from :func:`card_markdown`.

    The reliability diagram is inlined; raw HTML in recorded text (a move's reason) is
    shown as text, never interpreted.
    """
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(card_markdown(card))
    if card.reliability_svg is not None:
        svg = card.reliability_svg[card.reliability_svg.find("<svg") :]
        body = re.sub(rf'<img src="{re.escape(RELIABILITY_FILE)}"[^>]*>', lambda _: svg, body)
    model = card.facts["model"]
    title = escape(f"Model card: {model['name']} version {model['version']}")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_HTML_STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
