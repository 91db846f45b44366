"""Dashboard cost against plain MLflow: whole processes, and the same process at 10,000 runs.

Builds fresh SQLite stores (five experiments; 10 params, 10 metrics, 5 tags per run; half
the runs in the training experiment; a registered model whose versions 1 and 2 hold the
aliases production and staging) by bulk inserts into MLflow's own tables.

Whole processes, as a person runs them (median of ``--repeat`` runs, stdout a pipe), at
1,200 and 10,000 runs (``--process-runs``): ``fraudkit dashboard summary`` (the console
script and ``python -m fraudkit.dashboard``), ``registry`` and ``compare``, each against a
plain script that imports MLflow and calls ``mlflow.search_runs`` on the same store.
Targets: at most 1.0 s wall, and at most 0.2x the plain script.

The same process at ``--runs`` runs (default 10,000), three ratios (lower is better):

* ``fraudkit dashboard summary`` / ``mlflow.search_runs`` over the same experiments
  (target <= 0.2), and the summary's absolute time;
* ``fraudkit dashboard export`` of every run to CSV / ``mlflow.search_runs(...).to_csv``
  (target <= 0.5);
* ``fraudkit dashboard cleanup --experiment-type training --keep-last-n 50 --yes`` / a loop
  of ``MlflowClient.delete_run`` over the same runs, each on its own copy of the store
  (target <= 0.2). Both must delete the same set.

Usage: ``python benchmarks/bench_dashboard.py [--runs N] [--process-runs 1200,10000]
[--repeat 5] [--processes-only] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("MPLBACKEND", "Agg")

N_PARAMS, N_METRICS = 10, 10
TARGETS = {"summary": 0.2, "export": 0.5, "cleanup": 0.2}
PROCESS_SECONDS = 1.0  # whole-process target, wall clock
PROCESS_RATIO = 0.2  # whole-process target against the plain search_runs script
MODEL = "credit_card_fraud_detector"
# The plain script a person would write instead of the dashboard.
SEARCH_SCRIPT = (
    "import sys, mlflow; mlflow.set_tracking_uri(sys.argv[1]); "
    "frame = mlflow.search_runs(experiment_ids=sys.argv[2].split(','), max_results=100_000); "
    "print(len(frame))"
)


def _timed(action: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def _build_store(home: Path, n_runs: int) -> tuple[str, dict[str, str]]:
    """Create the five experiments, then insert ``n_runs`` finished runs in bulk."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from sqlalchemy import create_engine

    from fraudkit import mlflow_manager

    ids = mlflow_manager.setup_experiments()
    # Half the runs go to training (the cleanup target), the rest spread over the others.
    others = [t for t in ids if t != "training"]
    counts = {"training": n_runs // 2}
    for i, kind in enumerate(others):
        counts[kind] = (n_runs - counts["training"]) // len(others) + (
            i < (n_runs - counts["training"]) % len(others)
        )
    now = int(time.time() * 1000)
    rows: dict[str, list[dict]] = {"runs": [], "params": [], "metrics": [], "tags": []}
    serial = 0
    for kind, count in counts.items():
        for _ in range(count):
            serial += 1
            run_id = uuid.uuid4().hex
            start = now - serial * 60_000
            name = f"{kind}-bench-{serial:05d}"
            rows["runs"].append(
                dict(
                    run_uuid=run_id,
                    name=name,
                    source_type="LOCAL",
                    source_name="bench",
                    entry_point_name="",
                    user_id="bench",
                    status="FINISHED",
                    start_time=start,
                    end_time=start + 30_000,
                    source_version="",
                    lifecycle_stage="active",
                    experiment_id=int(ids[kind]),
                    artifact_uri=f"{(home / 'mlartifacts').as_uri()}/{run_id}/artifacts",
                )
            )
            rows["params"] += [
                dict(run_uuid=run_id, key=f"param_{j}", value=str(serial % (j + 2) - 1))
                for j in range(N_PARAMS)
            ]
            metric_names = ["average_precision"] + [f"metric_{j}" for j in range(N_METRICS - 1)]
            rows["metrics"] += [
                dict(
                    run_uuid=run_id,
                    key=key,
                    value=((serial * 7919 + j) % 1000) / 1000,
                    timestamp=start,
                    step=0,
                    is_nan=False,
                )
                for j, key in enumerate(metric_names)
            ]
            tags = {
                "mlflow.runName": name,
                "fraudkit.experiment_type": kind,
                "fraudkit.label": "bench",
                "fraudkit.notebook": f"{kind}.ipynb",
                "fraudkit.pipeline_id": f"p{serial % 17}",
            }
            rows["tags"] += [dict(run_uuid=run_id, key=k, value=v) for k, v in tags.items()]
    engine = create_engine(mlflow_manager.tracking_uri)
    with engine.begin() as conn:
        conn.execute(SqlRun.__table__.insert(), rows["runs"])
        conn.execute(SqlParam.__table__.insert(), rows["params"])
        conn.execute(SqlMetric.__table__.insert(), rows["metrics"])
        conn.execute(SqlLatestMetric.__table__.insert(), rows["metrics"])
        conn.execute(SqlTag.__table__.insert(), rows["tags"])
    engine.dispose()
    # Versions 1 and 2 of the model, backed by the two newest training runs.
    client = mlflow_manager.client
    client.create_registered_model(MODEL)
    training = [row for row in rows["runs"] if row["experiment_id"] == int(ids["training"])]
    for alias, row in zip(("production", "staging"), training[:2], strict=True):
        source = f"{row['artifact_uri']}/model"
        version = client.create_model_version(MODEL, source, run_id=row["run_uuid"]).version
        client.set_registered_model_alias(MODEL, alias, version)
    return mlflow_manager.tracking_uri, ids


def _invoke(args: list[str], uri: str) -> str:
    from click.testing import CliRunner

    from fraudkit.cli import cli

    result = CliRunner().invoke(cli, args, env={"MLFLOW_TRACKING_URI": uri})
    if result.exit_code != 0:
        raise RuntimeError(f"fraudkit {' '.join(args)} failed: {result.output}")
    return result.stdout


def _median_seconds(command: list[str], env: dict[str, str], repeat: int, expect: str) -> float:
    """Median wall time of ``command`` as a whole process, stdout a pipe."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        if done.returncode != 0 or expect not in done.stdout:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")
    return statistics.median(times)


def _process_rows(n_runs: int, uri: str, ids: dict[str, str], repeat: int) -> list[tuple]:
    """Whole-process timings on one store: (runs, command, seconds, baseline seconds)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_WAIT_POLICY": "PASSIVE"}
    console = str(Path(sys.executable).parent / "fraudkit")
    search = [sys.executable, "-c", SEARCH_SCRIPT, uri, ",".join(ids.values())]
    baseline = _median_seconds(search, env, repeat, str(n_runs))
    commands = {
        "fraudkit dashboard summary": ([console, "dashboard", "summary"], "training"),
        "python -m fraudkit.dashboard summary": (
            [sys.executable, "-m", "fraudkit.dashboard", "summary"],
            "training",
        ),
        "fraudkit dashboard registry": ([console, "dashboard", "registry"], "production"),
        "fraudkit dashboard compare": ([console, "dashboard", "compare"], "production"),
    }
    rows = [(n_runs, "plain mlflow.search_runs script", baseline, baseline)]
    for name, (command, expect) in commands.items():
        rows.append((n_runs, name, _median_seconds(command, env, repeat, expect), baseline))
    return rows


def _print_process_rows(rows: list[tuple], repeat: int) -> bool:
    """Print the whole-process table; return whether every target is met."""
    print(
        f"\nwhole processes, stdout a pipe, median of {repeat}; targets: <= {PROCESS_SECONDS} s"
        f" and <= {PROCESS_RATIO}x the plain search_runs script"
    )
    print(
        f"{'runs':>6}  {'command':<38} {'seconds':>8} {'ratio':>7}  {'<= 1.0 s':<8} {'<= 0.2x':<7}"
    )
    ok = True
    for n_runs, name, seconds, baseline in rows:
        if name.startswith("plain"):
            print(f"{n_runs:>6}  {name:<38} {seconds:>8.3f}")
            continue
        ratio = seconds / baseline
        fast, small = seconds <= PROCESS_SECONDS, ratio <= PROCESS_RATIO
        ok &= fast and small
        verdicts = f"{'PASS' if fast else 'FAIL':<8} {'PASS' if small else 'FAIL':<7}"
        print(f"{n_runs:>6}  {name:<38} {seconds:>8.3f} {ratio:>7.3f}  {verdicts}")
    return ok


def _in_process(home: Path, uri: str, ids: dict[str, str], n_runs: int) -> bool:
    """The same-process ratios at ``n_runs``; return whether every target is met."""
    import json

    import mlflow
    from mlflow import MlflowClient

    from fraudkit import dashboard
    from fraudkit.dashboard import fastpath

    os.environ["FRAUDKIT_HOME"] = str(home)
    experiment_ids = list(ids.values())
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    client.search_experiments()  # open the store once so neither side pays for it
    store = fastpath.open_store(uri)
    assert store is not None, "fast path unavailable on the bench store"
    store.close()

    results = []

    def search() -> object:
        return mlflow.search_runs(experiment_ids=experiment_ids, max_results=100_000)

    search_time, frame = _timed(search)
    assert len(frame) == n_runs, len(frame)
    summary_time = min(_timed(lambda: _invoke(["dashboard", "summary"], uri))[0] for _ in range(3))
    results.append(("summary", summary_time, "mlflow.search_runs", search_time))

    baseline_csv, ours_csv = home / "baseline.csv", home / "ours.csv"
    baseline_time, _ = _timed(lambda: search().to_csv(baseline_csv, index=False))
    export_time, _ = _timed(
        lambda: _invoke(["dashboard", "export", "--output-file", str(ours_csv)], uri)
    )
    results.append(("export", export_time, "search_runs().to_csv()", baseline_time))

    db = Path(uri[len("sqlite:///") :])
    ours_db, loop_db = home / "cleanup-ours.db", home / "cleanup-loop.db"
    shutil.copy(db, ours_db)
    shutil.copy(db, loop_db)
    plan = dashboard.plan_cleanup("training", keep_last_n=50)
    args_cleanup = [
        "dashboard",
        "cleanup",
        "--experiment-type",
        "training",
        "--keep-last-n",
        "50",
        "--yes",
        "--json",
    ]
    cleanup_time, output = _timed(lambda: _invoke(args_cleanup, f"sqlite:///{ours_db}"))
    deleted = set(json.loads(output)["deleted"])
    loop_client = MlflowClient(f"sqlite:///{loop_db}")
    loop_client.search_experiments()

    def loop() -> None:
        for run_id in plan.to_delete:
            loop_client.delete_run(run_id)

    loop_time, _ = _timed(loop)
    assert deleted == set(plan.to_delete), "cleanup deleted a different set than planned"
    results.append(("cleanup", cleanup_time, "delete_run loop", loop_time))

    print(
        f"\nsame process, {n_runs} runs\n{'operation':<10} {'fraudkit s':>11} "
        f"{'baseline':<24} {'baseline s':>11} {'ratio':>7} {'target':>7}  result"
    )
    ok = True
    for name, ours, baseline_name, baseline in results:
        ratio = ours / baseline
        passed = ratio <= TARGETS[name]
        ok &= passed
        print(
            f"{name:<10} {ours:>11.3f} {baseline_name:<24} {baseline:>11.3f} {ratio:>7.3f} "
            f"{'<= ' + str(TARGETS[name]):>7}  {'PASS' if passed else 'FAIL'}"
        )
    print(f"\nsummary absolute time: {summary_time:.3f} s for {n_runs} runs")
    print(f"cleanup deleted {len(deleted)} runs of {len(plan.runs)} (kept 50)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the same-process store")
    parser.add_argument(
        "--process-runs",
        default="1200,10000",
        help="comma-separated store sizes for the whole-process timings",
    )
    parser.add_argument("--repeat", type=int, default=5, help="whole-process runs per median")
    parser.add_argument(
        "--processes-only", action="store_true", help="only the whole-process timings"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test with 1,000 runs")
    args = parser.parse_args()
    n_runs = 1_000 if args.quick else args.runs
    sizes = [1_000] if args.quick else [int(n) for n in args.process_runs.split(",") if n]
    repeat = 2 if args.quick else args.repeat

    root = Path(tempfile.mkdtemp(prefix="fraudkit-bench-dashboard-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    stores = {}
    for size in sorted({*sizes, *([] if args.processes_only else [n_runs])}):
        home = root / f"runs-{size}"
        home.mkdir()
        os.environ["FRAUDKIT_HOME"] = str(home)
        build_time, (uri, ids) = _timed(lambda home=home, size=size: _build_store(home, size))
        print(f"store: {size} runs built in {build_time:.1f} s ({uri})")
        stores[size] = (home, uri, ids)

    rows = [row for size in sizes for row in _process_rows(size, *stores[size][1:], repeat)]
    ok = _print_process_rows(rows, repeat)
    if not args.processes_only:
        ok &= _in_process(*stores[n_runs], n_runs)
    shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
