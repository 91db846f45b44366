"""The story of ``reports/index.html``, read from the tracking store, and its rendering.

:func:`read_story` gathers what the page shows, in reading order, as plain data (an
:class:`IndexStory`): the alias cards, the key metrics and the latest monitoring verdict
and the last pipeline's decisions (all from :mod:`fraudkit.reports.story`); one table per
experiment with a row per notebook run, numbers formatted by :mod:`fraudkit.display.glossary`;
the sweeps; the figures of the newest run of each notebook.

:func:`render_index` turns it into one self-contained page: style and the table-sorting
script inline, images as relative files, nothing fetched from the network. Runs and
experiments link to the MLflow UI (its machine-learning view,
:func:`fraudkit.tracking.links.experiment_url`) only when the store is a tracking server; a
local store's page stays offline.
:func:`build_report_index` does both and writes the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.core.exceptions import RegistryError
from fraudkit.core.tags import (
    ERROR_TAG,
    EXPERIMENT_TYPE_TAG,
    FAILED_CELL_TAG,
    NOTEBOOK_TAG,
    PARENT_RUN_TAG,
    REPORT_DIR_TAG,
    SWEEP_EXPERIMENT_TAG,
    SWEEP_INDEX_TAG,
    SWEEP_NOTEBOOK_TAG,
    SWEEP_POINT_TAG,
    SWEEP_POINTS_TAG,
    SWEEP_RUN_TAG,
)
from fraudkit.display.glossary import describe, format_value
from fraudkit.reports.run_pages import REPORT_FILES, TEMPLATES_DIR
from fraudkit.reports.story import (
    NOT_RUN,
    TITLES,
    AliasCard,
    KeyMetric,
    RunLink,
    TimelineStep,
    Verdict,
    alias_cards,
    is_top_level,
    list_windows,
    monitoring_verdict,
    pipeline_timeline,
    run_entry,
)
from fraudkit.reports.sweep_page import sweep_report_path
from fraudkit.tracking.links import ui_address

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from fraudkit.display.model_card import ModelCard
    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "INDEX_TEMPLATE",
    "SECTION_COLUMNS",
    "IndexStory",
    "RunRow",
    "Section",
    "build_report_index",
    "read_story",
    "render_index",
    "sweep_rows",
    "write_model_cards",
]

INDEX_TEMPLATE = "report_index.html.j2"
# Per experiment, in pipeline order: the columns of its table (a run's summary entry, else
# its metric, else its parameter), each shown when some run has it. Runs logged before the
# A/B change was renamed (relative_improvement, auprc_difference) hold `improvement`.
SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    kind: tuple(names.split())
    for kind, names in {
        "training": "model_type model_version average_precision share_of_bayes_auprc "
        "card_precision_at_k alert_budget_k fraud_precision fraud_recall threshold n_fraud",
        "model_comparison": "model_type average_precision val_average_precision roc_auc "
        "fraud_recall fit_seconds registered_version",
        "ab_testing": "model_a_version model_b_version metric_a metric_b winner p_value "
        "relative_improvement improvement promoted",
        "monitoring": "model_version n_windows first_alert_window retraining_recommended "
        "drift_scenario",
        "retraining": "parent_version new_version metric_a metric_b auprc_difference "
        "improvement p_value promoted",
    }.items()
}


@dataclass(frozen=True)
class RunRow:
    """One notebook run in its experiment's table.

    ``values`` maps a column to its text and its sort key (the number itself, yes/no as
    1/0, else the text); ``links`` are (label, relative path) of the run's report files;
    ``parent`` names the run a nested run belongs to.
    """

    run: RunLink
    status: str
    started: str
    error: str
    cell: str
    values: dict[str, tuple[str, float | str]]
    links: tuple[tuple[str, str], ...]
    parent: str | None = None


@dataclass(frozen=True)
class Section:
    """One experiment's runs.

    ``columns`` are (name, header, meaning, numeric) of its value columns: numeric ones (the
    glossary's names) align right, words (a model type, a winner) left.
    """

    kind: str
    title: str
    experiment_id: str
    url: str | None
    columns: tuple[tuple[str, str, str, bool], ...]
    rows: tuple[RunRow, ...]


@dataclass(frozen=True)
class IndexStory:
    """Everything ``reports/index.html`` shows, in reading order."""

    generated: str
    store: str
    cards: tuple[AliasCard, ...]
    key_metrics: tuple[KeyMetric, ...]
    verdict: Verdict | None
    pipeline_id: str | None
    timeline: tuple[TimelineStep, ...]
    sections: tuple[Section, ...]
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Pages:
    """Where a run's pages are: its report files under the page's folder, its MLflow UI page."""

    def __init__(self, client: MlflowClient, runs: Iterable[Run], base: Path, tracking_uri: str):
        self.client = client
        self.runs = {run.info.run_id: run for run in runs}
        self.base = base
        # Only a tracking server has a UI to link to (experiment_url drops any credentials).
        self.ui_base = ui_address(tracking_uri)

    def find(self, run_id: str) -> Run | None:
        """The run, from the runs read already or the store (None when missing)."""
        from fraudkit.tracking.store import find_run

        if run_id not in self.runs:
            found = find_run(self.client, run_id)
            if found is None:
                return None
            self.runs[run_id] = found
        return self.runs[run_id]

    def url(self, experiment_id: str, run_id: str | None = None) -> str | None:
        if self.ui_base is None:
            return None
        from fraudkit.tracking.links import experiment_url

        return experiment_url(self.ui_base, experiment_id, run_id)

    def folder(self, run: Run) -> Path:
        return self.base / run.data.tags.get(REPORT_DIR_TAG, f"runs/{run.info.run_name}")

    def link(self, run_id: str | None) -> RunLink | None:
        if not run_id:
            return None
        run = self.find(run_id)
        if run is None:
            return RunLink(run_id, run_id)
        report = self.folder(run) / "report.html"
        return RunLink(
            run_id,
            run.info.run_name or run_id,
            report.relative_to(self.base).as_posix() if report.exists() else None,
            self.url(run.info.experiment_id, run_id),
        )


def _sort_key(value: Any, text: str) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return {"yes": 1.0, "no": 0.0}.get(text, text)


def _row(pages: _Pages, run: Run, columns: Iterable[str]) -> RunRow:
    tags = run.data.tags
    folder = pages.folder(run)
    values = {}
    for name in columns:
        value = run_entry(run, name)
        if value is not None:
            text = format_value(name, value)
            values[name] = (text, _sort_key(value, text))
    parent = pages.find(tags[PARENT_RUN_TAG]) if PARENT_RUN_TAG in tags else None
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
    return RunRow(
        run=pages.link(run.info.run_id) or RunLink(run.info.run_id, run.info.run_id),
        status=run.info.status,
        started=started.strftime("%Y-%m-%d %H:%M:%S"),
        error=(tags.get(ERROR_TAG) or "")[:200],
        cell=tags.get(FAILED_CELL_TAG, "?"),
        values=values,
        links=tuple(
            (text, (folder / name).relative_to(pages.base).as_posix())
            for text, name in REPORT_FILES
            if (folder / name).exists()
        ),
        parent=(parent.info.run_name or parent.info.run_id) if parent else None,
    )


def _sections(pages: _Pages, runs: list[Run], experiment_ids: Mapping[str, str]) -> list[Section]:
    sections = []
    for kind, wanted in SECTION_COLUMNS.items():
        rows = [
            _row(pages, r, wanted) for r in runs if r.data.tags.get(EXPERIMENT_TYPE_TAG) == kind
        ]
        columns = []
        for name in wanted:
            if any(name in row.values for row in rows):
                info = describe(name)
                header = info.label if info else name.replace("_", " ")
                unit = f" ({info.unit})" if info and info.unit else ""
                meaning = f"{info.meaning}{unit}" if info else ""
                columns.append((name, header, meaning, info is not None))
        experiment = experiment_ids.get(kind, "")
        url = pages.url(experiment) if experiment else None
        sections.append(Section(kind, TITLES[kind], experiment, url, tuple(columns), tuple(rows)))
    return sections


def _figures(pages: _Pages, runs: list[Run]) -> dict[str, dict[str, Any]]:
    """The figures of the newest run of each notebook that has some, in pipeline order."""
    figures: dict[str, dict[str, Any]] = {}
    for run in runs:
        kind = run.data.tags.get(EXPERIMENT_TYPE_TAG, "")
        folder = pages.folder(run) / "figures"
        if kind in figures or not folder.is_dir():
            continue
        paths = [p.relative_to(pages.base).as_posix() for p in sorted(folder.glob("*.png"))]
        if paths:
            figures[kind] = {"title": TITLES.get(kind, kind), "name": run.info.run_name}
            figures[kind]["paths"] = paths
    rank = {kind: i for i, kind in enumerate(TITLES)}
    return {kind: figures[kind] for kind in sorted(figures, key=lambda k: rank.get(k, len(rank)))}


def read_story(
    client: MlflowClient, experiment_ids: Mapping[str, str], base: Path, *, tracking_uri: str
) -> IndexStory:
    """Read the index page's story from the tracking store.

    Parameters
    ----------
    client : MlflowClient
    experiment_ids : mapping
        ``{experiment type: experiment id}`` of the kit's experiments.
    base : Path
        The folder the page is written to; report links are relative to it.
    tracking_uri : str
        The store; on a tracking server, runs and experiments get MLflow UI links.

    Returns
    -------
    IndexStory
    """
    from fraudkit.tracking.store import paged

    found = paged(
        client.search_runs,
        experiment_ids=list(experiment_ids.values()),
        filter_string=f"tags.`{NOTEBOOK_TAG}` != ''",
        order_by=["attributes.start_time DESC"],
    )
    # Sweep runs are listed with the sweeps; their points are notebook runs.
    runs = [r for r in found if r.data.tags.get(SWEEP_EXPERIMENT_TAG) != "true"]
    pages = _Pages(client, runs, base, tracking_uri)
    cards, key_metrics = alias_cards(client, pages.link, pages.find)
    monitoring = next(
        (
            r
            for r in runs
            if r.data.tags.get(EXPERIMENT_TYPE_TAG) == "monitoring"
            and r.info.status == "FINISHED"
            and is_top_level(r)
        ),
        None,
    )
    pipeline, timeline = pipeline_timeline(client, runs, pages.link)
    return IndexStory(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        store=config.redact_uri(tracking_uri),
        cards=tuple(cards),
        key_metrics=tuple(key_metrics),
        verdict=monitoring_verdict(client, monitoring, pages.link) if monitoring else None,
        pipeline_id=pipeline,
        timeline=tuple(timeline),
        sections=tuple(_sections(pages, runs, experiment_ids)),
        sweeps=sweep_rows(client, list(experiment_ids.values()), base),
        figures=_figures(pages, runs),
    )


def render_index(story: IndexStory) -> str:
    """Render the story as one self-contained HTML page (style and script inline).

    Parameters
    ----------
    story : IndexStory

    Returns
    -------
    str
        The page.
    """
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["windows"] = list_windows
    return environment.get_template(INDEX_TEMPLATE).render(story=story, NOT_RUN=NOT_RUN)


# -- the sweeps table and the page ------------------------------------------------------------


def sweep_rows(client: MlflowClient, experiment_ids: list[str], base: Path) -> list[dict]:
    """One row of the index's sweeps table per sweep run, newest first.

    Its points are counted from its child runs: a point counts as finished when one of its
    runs FINISHED (a point rescheduled after a killed worker has a KILLED run and a
    FINISHED one), as failed when all its runs ended otherwise; points without a run
    (cancelled before they started) are "not run".
    """
    from fraudkit.tracking.store import paged

    sweeps = list(
        paged(
            client.search_runs,
            experiment_ids=experiment_ids,
            filter_string=f"tags.`{SWEEP_EXPERIMENT_TAG}` = 'true'",
            order_by=["attributes.start_time DESC"],
        )
    )
    if not sweeps:
        return []
    # One search for every child of every sweep, rather than one search per sweep.
    children: dict[str, list[Run]] = {}
    for child in paged(
        client.search_runs,
        experiment_ids=experiment_ids,
        filter_string=f"tags.`{SWEEP_RUN_TAG}` != ''",
    ):
        children.setdefault(child.data.tags[SWEEP_RUN_TAG], []).append(child)
    rows = []
    for sweep in sweeps:
        states: dict[str, set[str]] = {}
        varied: dict[str, None] = {}  # an ordered set: the grid's parameter names
        for child in children.get(sweep.info.run_id, []):
            tags = child.data.tags
            states.setdefault(tags.get(SWEEP_INDEX_TAG, child.info.run_id), set()).add(
                child.info.status
            )
            varied.update(dict.fromkeys(_point_names(tags.get(SWEEP_POINT_TAG))))
        finished = sum("FINISHED" in seen for seen in states.values())
        running = sum("RUNNING" in seen and "FINISHED" not in seen for seen in states.values())
        failed = len(states) - finished - running
        tags = sweep.data.tags
        points = max(_count(tags.get(SWEEP_POINTS_TAG)), len(states))
        # Where fraudkit.sweeps.run copies the sweep's report, relative to the reports folder.
        name = sweep.info.run_name or sweep.info.run_id
        report = base / sweep_report_path(name).relative_to(config.reports_dir())
        started = datetime.fromtimestamp(sweep.info.start_time / 1000, UTC)
        rows.append(
            {
                "notebook": tags.get(SWEEP_NOTEBOOK_TAG) or tags.get(EXPERIMENT_TYPE_TAG, ""),
                "name": name,
                "status": sweep.info.status,
                "points": points,
                "finished": finished,
                "failed": failed,
                "running": running,
                "not_run": points - len(states),
                "varied": ", ".join(varied),
                "started": started.strftime("%Y-%m-%d %H:%M:%S"),
                "report": report.relative_to(base).as_posix() if report.exists() else None,
                "run_id": sweep.info.run_id,
            }
        )
    return rows


def _point_names(point: str | None) -> list[str]:
    """The varied parameter names of a child run's grid point tag (JSON), [] when unreadable."""
    try:
        decoded = json.loads(point or "{}")
    except ValueError:
        return []
    return list(decoded) if isinstance(decoded, dict) else []


def _count(value: str | None) -> int:
    """A count recorded as a tag, 0 when missing or unreadable."""
    try:
        return int(value or 0)
    except ValueError:
        return 0


def build_report_index(
    output: str | os.PathLike | None = None, *, manager: MlflowManager | str | None = None
) -> Path:
    """Write ``reports/index.html``: the story of the tracking store, for a reader.

    The page is static and self-contained (open it from disk; its only script, the table
    sorting, is inline). From the top: one card per alias with the version holding it, its
    model type, since when and why (the recorded alias moves, their evidence runs linked);
    the key metrics of those versions with their meaning and unit and the share of the
    Bayes ceiling; the latest monitoring verdict; what each notebook of the last pipeline
    decided; one sortable table per experiment with every notebook run (status, key
    numbers formatted by :mod:`fraudkit.display.glossary`, links to its HTML report and executed
    notebook when the files exist locally, its MLflow run id); the sweeps; the figures of
    the newest run of each notebook. Each alias card links to its version's model card,
    written under ``model_cards/`` beside the page. See :mod:`fraudkit.reports.index`.

    Parameters
    ----------
    output : path, optional
        Where to write the page; default ``<FRAUDKIT_HOME>/reports/index.html``. Links are
        relative to its folder.
    manager : MlflowManager or str, optional
        The tracking store to read (a manager or a tracking URI); default the shared
        :data:`fraudkit.tracking.manager.mlflow_manager`.

    Returns
    -------
    Path
        The page written.
    """
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    target = Path(output) if output else config.reports_dir() / "index.html"
    story = read_story(
        manager.client,
        manager.setup_experiments(),
        target.parent,
        tracking_uri=manager.tracking_uri,
    )
    cards = write_model_cards(manager.client, story.cards, target.parent, manager.tracking_uri)
    story = replace(story, cards=cards)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_index(story), encoding="utf-8")
    return target


def write_model_cards(
    client: MlflowClient, cards: Iterable[AliasCard], folder: Path, tracking_uri: str
) -> tuple[AliasCard, ...]:
    """Write the model card of each alias card's version under ``folder/model_cards/``.

    Each page is the card as ``fraudkit card`` renders it (the alias history as it stands),
    its numbers linked as the index links runs: to the MLflow UI on a tracking server; on
    a local store, which has no UI to link to, to the run's report page beside the index
    when it has one (the pages are read offline). A version registered before model cards
    gets no page.

    Returns
    -------
    tuple of AliasCard
        The cards, each with ``model_card`` set to its page's path relative to ``folder``.
    """
    from fraudkit.tracking.model_cards import load_model_card, write_model_card

    pages = _Pages(client, [], folder, tracking_uri)
    written: dict[tuple[str, str], str | None] = {}
    updated = []
    for card in cards:
        key = (card.model, card.version)
        if key not in written:
            try:
                model_card = load_model_card(f"models:/{card.model}/{card.version}", client=client)
            except RegistryError:
                written[key] = None  # registered before the kit logged model cards
            else:
                if pages.ui_base is None:
                    model_card = replace(model_card, links=_report_links(pages, model_card))
                name = re.sub(r"[^A-Za-z0-9._-]", "_", card.model)
                path = write_model_card(
                    model_card, folder / "model_cards" / f"{name}-v{card.version}.html"
                )
                written[key] = path.relative_to(folder).as_posix()
        updated.append(replace(card, model_card=written[key]))
    return tuple(updated)


def _report_links(pages: _Pages, card: ModelCard) -> dict[str, str]:
    """Each of the card's runs -> its report page, relative to ``model_cards/``."""
    links = {}
    for run_id in card.run_ids:
        link = pages.link(run_id)
        if link is not None and link.report:
            links[run_id] = f"../{link.report}"
    return links
