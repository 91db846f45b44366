"""``fraudkit dashboard ...`` piped, as a person pipes it: whole processes, stdout a pipe.

Every table is a header line and one tab-separated record per line, ids whole, so grep and
cut work. ``summary``, ``registry`` and ``compare`` answer on the SQL fast path without
importing MLflow or pandas.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from support import dashboard_store
from support.dashboard_store import Store, sqlite_only

from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.dashboard.records import REGISTRY_COLUMNS

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store

# Longer than any terminal is wide, with spaces: rich would wrap it.
LONG_NAME = ("nightly retrain of the card-not-present model " * 4).strip()


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "FRAUDKIT_HOME": str(home), "COLUMNS": "60"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _pipe(home: Path, *args: str) -> str:
    """Run ``python -m fraudkit dashboard ARGS`` with stdout a pipe; return stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "fraudkit", "dashboard", *args],
        capture_output=True,
        text=True,
        env=_env(home),
        cwd=home,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Parse piped tables: ``# title`` lines start a table (untitled: key ""), then a
    header, then records; every record has exactly the header's fields."""
    tables: dict[str, list[dict[str, str]]] = {}
    title, header = "", None
    for line in text.splitlines():
        if line.startswith("# "):
            title, header = line[2:], None
        elif not line:
            continue
        elif header is None:
            header = line.split("\t")
            tables[title] = []
        else:
            fields = line.split("\t")
            assert len(fields) == len(header), line
            tables[title].append(dict(zip(header, fields, strict=True)))
    return tables


@sqlite_only
def test_every_dashboard_command_pipes_whole_records(store: Store, fraudkit_home: Path):
    t = store.training
    store.manager.client.update_run(t[0], name=LONG_NAME)

    summary = _tables(_pipe(fraudkit_home, "summary"))
    training = next(r for r in summary["Experiments"] if r["experiment_type"] == "training")
    assert (training["latest_run_id"], training["latest_run_name"]) == (t[0], LONG_NAME)
    assert (training["best_run_id"], training["best_average_precision"]) == (t[5], "0.75")
    assert training["latest_start"].endswith("Z") and training["total"] == "6"
    [model] = summary["Registered models"]
    assert model == {
        "model": DEFAULT_MODEL_NAME,
        "versions": "2",
        "latest_version": "2",
        "aliases": "production=1,staging=2",
    }

    text = _pipe(fraudkit_home, "registry")
    assert text.splitlines()[0].split("\t") == REGISTRY_COLUMNS
    registry = _tables(text)[""]
    assert [(r["version"], r["aliases"], r["run_id"]) for r in registry] == [
        ("1", "production", store.backing),
        ("2", "staging", store.staging),
    ]
    assert all(r["model"] == DEFAULT_MODEL_NAME and r["model_type"] == "hgb" for r in registry)

    compared = {r["field"]: r for r in _tables(_pipe(fraudkit_home, "compare"))[""]}
    assert compared["run_id"] == {
        "field": "run_id",
        "production": store.backing,
        "staging": store.staging,
        "difference": "",
    }
    assert float(compared["average_precision"]["difference"]) == 0.75 - 0.7
    assert compared["param.note"]["production"] == '=HYPERLINK("x4")'
    by_version = _tables(_pipe(fraudkit_home, "compare", "--versions", "2", "1"))[""]
    assert next(r for r in by_version if r["field"] == "version") == {
        "field": "version",
        "v2": "2",
        "v1": "1",
        "difference": "",
    }

    history = _tables(_pipe(fraudkit_home, "history"))[""]
    assert [(r["version"], r["run_id"], r["w0"]) for r in history] == [
        ("1", store.backing, "0.7"),
        ("2", store.staging, "0.75"),
    ]
    long = _tables(_pipe(fraudkit_home, "history", "--metric", "all"))[""]
    assert {(r["run_id"], r["metric"]) for r in long} == {
        (run_id, metric)
        for run_id in (store.backing, store.staging)
        for metric in ("average_precision", "roc_auc")
    }

    text = _pipe(fraudkit_home, "cleanup", "--experiment-type", "training", "--keep-last-n", "1")
    assert text.startswith("Dry run: would delete 2 of 6 runs")
    plan = _tables(text)
    assert [r["run_id"] for r in plan["Runs to delete"]] == [t[2], t[3]]
    protected = {r["run_id"]: r["reason"] for r in plan["Protected (not deleted)"]}
    assert protected == {
        t[1]: "running",
        t[4]: f"backs {DEFAULT_MODEL_NAME} v1",
        t[5]: f"backs {DEFAULT_MODEL_NAME} v2",
    }

    text = _pipe(fraudkit_home, "export", "--output-file", "runs.csv")
    assert text.startswith("Exported 8 runs") and (fraudkit_home / "runs.csv").is_file()


@sqlite_only
def test_grep_and_cut_find_the_registry_rows(store: Store, fraudkit_home: Path):
    # The issue's own check: `fraudkit dashboard registry | grep <model>` finds the rows.
    command = shlex.join([sys.executable, "-m", "fraudkit", "dashboard", "registry"])
    done = subprocess.run(
        f"{command} | grep {DEFAULT_MODEL_NAME} | cut -f2,3,6",
        shell=True,
        capture_output=True,
        text=True,
        env=_env(fraudkit_home),
        timeout=300,
        check=True,
    )
    assert done.stdout.splitlines() == [
        f"1\tproduction\t{store.backing}",
        f"2\tstaging\t{store.staging}",
    ]


@sqlite_only
def test_tabs_and_newlines_in_values_stay_on_their_line(store: Store, fraudkit_home: Path):
    store.manager.client.update_run(store.training[0], name="two\tfields\nand two lines")
    summary = _tables(_pipe(fraudkit_home, "summary"))["Experiments"]
    training = next(r for r in summary if r["experiment_type"] == "training")
    assert training["latest_run_name"] == "two\\tfields\\nand two lines"


# Runs the console script's main on the store, then reports which heavy packages loaded.
_PROBE = """
import sys
from fraudkit.cli import main
sys.argv = ["fraudkit", "dashboard", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
heavy = [m for m in ("mlflow", "pandas", "sqlalchemy", "numpy", "rich") if m in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


@sqlite_only
def test_summary_registry_and_compare_import_neither_mlflow_nor_pandas(
    store: Store, fraudkit_home: Path
):
    for args in (["summary"], ["summary", "--json"], ["registry"], ["compare"]):
        done = subprocess.run(
            [sys.executable, "-c", "import json\n" + _PROBE, *args],
            capture_output=True,
            text=True,
            env=_env(fraudkit_home),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip(), args  # it did answer
        assert json.loads(done.stderr.splitlines()[-1]) == [], args
    # Not a fast-path store (a server, another schema): the public API answers instead.
    (fraudkit_home / "elsewhere").mkdir()
    env = {**_env(fraudkit_home), "FRAUDKIT_HOME": str(fraudkit_home / "elsewhere")}
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + _PROBE, "summary"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "mlflow" in json.loads(done.stderr.splitlines()[-1])
