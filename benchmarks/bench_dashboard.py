"""Dashboard cost against plain MLflow on a store of 10,000 runs, measured in the same process.

Builds a fresh SQLite store (five experiments; 10 params, 10 metrics, 5 tags per run; half
the runs in the training experiment) by bulk inserts into MLflow's own tables, then prints
three ratios (lower is better) with their targets:

* ``fraudkit dashboard summary`` / ``mlflow.search_runs`` over the same experiments
  (target <= 0.2), and the summary's absolute time;
* ``fraudkit dashboard export`` of every run to CSV / ``mlflow.search_runs(...).to_csv``
  (target <= 0.5);
* ``fraudkit dashboard cleanup --experiment-type training --keep-last-n 50 --yes`` / a loop
  of ``MlflowClient.delete_run`` over the same runs, each on its own copy of the store
  (target <= 0.2). Both must delete the same set.

Usage: ``python benchmarks/bench_dashboard.py [--runs N] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    return mlflow_manager.tracking_uri, ids


def _invoke(args: list[str], uri: str) -> str:
    from click.testing import CliRunner

    from fraudkit.cli import cli

    result = CliRunner().invoke(cli, args, env={"MLFLOW_TRACKING_URI": uri})
    if result.exit_code != 0:
        raise RuntimeError(f"fraudkit {' '.join(args)} failed: {result.output}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store")
    parser.add_argument("--quick", action="store_true", help="smoke test with 1,000 runs")
    args = parser.parse_args()
    n_runs = 1_000 if args.quick else args.runs

    home = Path(tempfile.mkdtemp(prefix="fraudkit-bench-dashboard-"))
    os.environ["FRAUDKIT_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import json

    import mlflow
    from mlflow import MlflowClient

    from fraudkit import dashboard
    from fraudkit.dashboard import fastpath

    build_time, (uri, ids) = _timed(lambda: _build_store(home, n_runs))
    experiment_ids = list(ids.values())
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    client.search_experiments()  # open the store once so neither side pays for it
    print(f"store: {n_runs} runs built in {build_time:.1f} s ({uri})")
    assert fastpath.sql_engine(uri) is not None, "fast path unavailable on the bench store"

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
        f"\n{'operation':<10} {'fraudkit s':>11} {'baseline':<24} {'baseline s':>11} "
        f"{'ratio':>7} {'target':>7}  result"
    )
    failed = False
    for name, ours, baseline_name, baseline in results:
        ratio = ours / baseline
        ok = ratio <= TARGETS[name]
        failed |= not ok
        print(
            f"{name:<10} {ours:>11.3f} {baseline_name:<24} {baseline:>11.3f} {ratio:>7.3f} "
            f"{'<= ' + str(TARGETS[name]):>7}  {'PASS' if ok else 'FAIL'}"
        )
    print(f"\nsummary absolute time: {summary_time:.3f} s for {n_runs} runs")
    print(f"cleanup deleted {len(deleted)} runs of {len(plan.runs)} (kept 50)")
    shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
