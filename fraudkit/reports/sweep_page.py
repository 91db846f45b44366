"""A sweep's self-contained HTML report, and where the client keeps it.

:func:`render_sweep_report` draws the results table of a sweep
(:func:`fraudkit.sweeps.results.results_table`): the points that did not finish, the
table, and each key metric against each varied parameter, images embedded.
:func:`sweep_report_path` is where the client keeps its copy, under
``reports/sweeps/<sweep run name>/``, which the report index links to.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.reports.run_pages import RESULT_METRICS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SWEEPS_DIR", "render_sweep_report", "sweep_report_path"]

SWEEPS_DIR = "sweeps"  # under reports/: one folder per sweep run, named after it

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f3f3f3; }
.failed { color: #b00020; }
.plots img { max-width: 32%; margin: 0.2rem; border: 1px solid #eee; }
</style></head><body>
<h1>{{ title }}</h1>
<p>Notebook <b>{{ notebook }}</b> &middot; sweep run <code>{{ run_id }}</code> &middot;
{{ finished }} of {{ total }} points finished &middot; generated {{ generated }}</p>
{% if failed %}<h2>Points that did not finish</h2><ul class="failed">
{% for item in failed %}<li>point {{ item.index }} {{ item.point }}: {{ item.status }}
{% if item.run_id %}(run <code>{{ item.run_id }}</code>){% endif %}</li>{% endfor %}
</ul>{% endif %}
<h2>Results</h2>
{{ table_html }}
{% if plots %}<h2>Key metrics against the varied parameters</h2>
{% for metric, images in plots.items() %}<h3>{{ metric }}</h3><div class="plots">
{% for name, data in images %}<img alt="{{ metric }} against {{ name }}"
 src="data:image/png;base64,{{ data }}">{% endfor %}</div>{% endfor %}{% endif %}
</body></html>
"""


def _varied(table: pd.DataFrame) -> list[str]:
    start, end = 1, list(table.columns).index("status")
    return [c for c in table.columns[start:end] if table[c].nunique(dropna=False) > 1]


def _metrics(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c in RESULT_METRICS and table[c].notna().any()]


def _label(value: Any) -> str:
    return "(default)" if value is None or value != value else str(value)  # NaN != NaN


def _plot(table: pd.DataFrame, metric: str, parameter: str) -> str:
    """One metric against one parameter as a base64 PNG: each point, and the mean per value."""
    import pandas as pd
    from matplotlib.figure import Figure

    data = table[[parameter, metric]].dropna(subset=[metric])
    numeric = pd.api.types.is_numeric_dtype(data[parameter]) and data[parameter].notna().all()
    # A point that leaves the parameter out (cases may) runs with the notebook's default.
    x = data[parameter] if numeric else data[parameter].map(_label)
    labels = sorted(x.unique(), key=lambda v: (not numeric, v if numeric else str(v)))
    position = {v: (v if numeric else i) for i, v in enumerate(labels)}
    means = data[metric].groupby(x.to_numpy()).mean()
    # The Figure API, not pyplot: no global state, safe next to notebook kernels and threads.
    figure = Figure(figsize=(4.2, 3.0), dpi=90)
    axes = figure.subplots()
    axes.scatter([position[v] for v in x], data[metric], alpha=0.7)
    axes.plot([position[v] for v in labels], [means[v] for v in labels], color="C1", marker="_")
    if not numeric:
        axes.set_xticks(range(len(labels)), [str(v) for v in labels], rotation=20, ha="right")
    axes.set_xlabel(parameter)
    axes.set_ylabel(metric)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_sweep_report(
    table: pd.DataFrame, *, notebook: str, run_id: str, title: str, destination: Path
) -> Path:
    """Write the sweep's self-contained HTML report (table, failures, plots) to ``destination``.

    Parameters
    ----------
    table : DataFrame
        As :func:`results_table` returns it.
    notebook, run_id, title : str
        The notebook swept, the sweep run's id and the page title (the sweep run's name).
    destination : Path
        The HTML file to write.

    Returns
    -------
    Path
        ``destination``.
    """
    import jinja2
    import markupsafe

    varied, metrics = _varied(table), _metrics(table)
    plots = {m: [(p, _plot(table, m, p)) for p in varied] for m in metrics} if varied else {}
    failed = [
        {
            "index": row["index"],
            "point": {p: row[p] for p in varied},
            "status": row["status"],
            "run_id": row["run_id"],
        }
        for _, row in table[table["status"] != "FINISHED"].iterrows()
    ]
    page = (
        jinja2.Environment(autoescape=True)
        .from_string(_TEMPLATE)
        .render(
            title=title,
            notebook=notebook,
            run_id=run_id,
            finished=int((table["status"] == "FINISHED").sum()),
            total=len(table),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            failed=failed,
            # pandas escapes the cells itself; Markup keeps jinja2 from escaping the tags.
            table_html=markupsafe.Markup(
                table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4f}")
            ),
            plots=plots,
        )
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(page, encoding="utf-8")
    return destination


def sweep_report_path(run_name: str) -> Path:
    """Return where the client keeps a sweep's report: ``reports/sweeps/<run name>/report.html``."""
    # Path(...).name: a run name is free text, and must not lead out of the reports folder.
    return config.reports_dir() / SWEEPS_DIR / Path(run_name).name / "report.html"
