"""Sweep speed-up: quick training points run one after another, then as a Dask sweep.

The same points (seeds x two model types of ``01_training``, small simulated data so a
job takes 10-20 s) run one after another through ``run_notebook``, and through
``run_sweep(..., workers=2)`` on a local cluster, in the same process and store, in rounds
that alternate which goes first (``--rounds``, default 2). Prints:

* both wall times, each round's ratio and the ratio of the sums (target <= 0.65 on 2
  cores: 0.5 is perfect);
* the per-job overhead the sweep adds, ``(workers x sweep time - sequential time) / jobs``,
  split into start (cluster, sweep run, first task on a fresh worker), slower jobs side by
  side (two notebooks sharing two cores), idle workers between and after jobs, and the end
  (results table, sweep report, the copy of the last point's reports from the store: the
  others are copied while the remaining points run);
* the model these numbers imply for a 32-worker cluster: per-job time, plus the
  scheduling overhead, plus the store write rate it needs, checked against the write rate
  of a PostgreSQL-backed MLflow server under the team-server test's load (8 processes
  logging 100 runs each, ``tests/tracking/test_team_server.py``), measured here with the same
  throwaway server (skipped with ``--no-postgres`` or without PostgreSQL).

Usage: ``python benchmarks/bench_sweep.py [--quick] [--workers 2] [--rounds 2] [--no-postgres]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.65
MODEL_TYPES = ["logistic_regression", "hist_gradient_boosting"]
# 1 % fraud keeps a few dozen frauds in 20,000 rows; the model name keeps the bench's
# versions apart from the demo's (the store is a fresh temporary one anyway).
SHARED = {"n_transactions": 20_000, "fraud_rate": 0.01, "model_name": "bench_sweep_model"}
QUICK_SHARED = {**SHARED, "n_transactions": 10_000}
CLUSTER_WORKERS = 32
CLUSTER_JOBS = (32, 150, 1_000)  # 150: the 5 model types x 10 seeds x 3 fraud rates
TEAM_WRITERS, TEAM_RUNS = 8, 100  # the team-server test's load


def _durations(runs: list) -> list[float]:
    """Seconds from creation to end of each run, as the store recorded them."""
    return [(r.info.end_time - r.info.start_time) / 1000 for r in runs]


def _run_size(client, run) -> tuple[int, int, int]:
    """(params + metrics + tags, artifact files, artifact bytes) a run wrote."""
    data = run.data
    values = len(data.params) + len(data.metrics) + len(data.tags)
    folder = Path(run.info.artifact_uri.removeprefix("file://"))
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return values, len(files), sum(p.stat().st_size for p in files)


def _postgres_write_rate(folder: Path, runs_each: int) -> tuple[float, int] | None:
    """Runs a second a PostgreSQL-backed server takes from 8 writer processes, and the
    params, metrics and tags of one of those runs; None without PostgreSQL."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from support.servers import MlflowServer, postgres_cluster
        from support.workers import WorkerPool
    except ImportError as exc:
        print(f"PostgreSQL write rate: skipped ({exc})")
        return None
    (folder / "server").mkdir(parents=True, exist_ok=True)
    try:
        with (
            postgres_cluster() as database,
            MlflowServer(database, folder / "server", workers=2) as server,
            WorkerPool(folder) as pool,
        ):
            env = {"MLFLOW_TRACKING_URI": server.url, "FRAUDKIT_HOME": str(folder)}
            started = time.perf_counter()
            for i in range(TEAM_WRITERS):
                pool.spawn(f"runs{i}", ["runs", f"writer{i}", str(runs_each)], env)
            pool.wait(timeout=900)
            seconds = time.perf_counter() - started
            from mlflow import MlflowClient

            store = MlflowClient(tracking_uri=server.url)
            experiments = [e.experiment_id for e in store.search_experiments()]
            data = store.search_runs(experiments, max_results=1)[0].data
            values = len(data.params) + len(data.metrics) + len(data.tags)
    except (OSError, RuntimeError) as exc:
        print(f"PostgreSQL write rate: skipped, no PostgreSQL server ({exc})")
        return None
    total = TEAM_WRITERS * runs_each
    print(
        f"PostgreSQL-backed server, {TEAM_WRITERS} processes x {runs_each} runs: "
        f"{seconds:.1f} s, {total / seconds:.1f} runs/s (each run: {values} params, metrics "
        "and tags, 1 artifact file; the throwaway PostgreSQL skips fsync)"
    )
    return total / seconds, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 points of 10,000 rows")
    parser.add_argument("--workers", type=int, default=2, help="local cluster workers")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of both variants, alternating which goes first",
    )
    parser.add_argument(
        "--no-postgres", action="store_true", help="skip the PostgreSQL write-rate measurement"
    )
    args = parser.parse_args()
    seeds = [1, 2] if args.quick else [1, 2, 3, 4]
    shared = QUICK_SHARED if args.quick else SHARED

    home = Path(tempfile.mkdtemp(prefix="fraudkit-bench-sweep-"))
    os.environ["FRAUDKIT_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)

    from fraudkit import mlflow_manager
    from fraudkit.runner.execution import run_notebook
    from fraudkit.sweeps.run import expand_points, run_sweep, sweep_children

    grid = {"seed": seeds, "model_type": MODEL_TYPES}
    points = expand_points(grid, None)
    jobs = len(points)
    client = mlflow_manager.client
    experiment = mlflow_manager.experiment_id("training")
    print(f"store: {mlflow_manager.tracking_uri}")
    print(
        f"{jobs} points of 01_training ({shared['n_transactions']:,} rows; seeds "
        f"{seeds[0]}-{seeds[-1]} x {', '.join(MODEL_TYPES)}), {os.cpu_count()} cores"
    )
    # One run first, untimed: the kernel's first start and cold imports would count against
    # whichever variant went first.
    run_notebook("training", {**shared, **points[0]}, progress=False)

    def sequential() -> tuple[float, list]:
        started = time.perf_counter()
        ids = [
            run_notebook("training", {**shared, **point}, progress=False).run_id for point in points
        ]
        return time.perf_counter() - started, [client.get_run(run_id) for run_id in ids]

    def sweep() -> tuple[float, list, float, float]:
        started = time.perf_counter()
        result = run_sweep("training", grid=grid, parameters=shared, workers=args.workers)
        ended = time.perf_counter()
        if result.exit_code != 0:
            failed = ", ".join(f"{o.index} ({o.status}: {o.error})" for o in result.failed)
            raise SystemExit(f"the sweep did not finish every point: {failed}")
        children = sweep_children(client, experiment, result.sweep_run_id)
        # The store's clock (ms since the epoch) on this process's perf_counter timeline.
        offset = time.time() - time.perf_counter()
        first_start = min(r.info.start_time for r in children) / 1000 - offset
        last_end = max(r.info.end_time for r in children) / 1000 - offset
        return ended - started, children, first_start - started, ended - last_end

    # Rounds alternate which variant goes first, so that a machine getting busier or quieter
    # during the run does not favour one of them; the ratio pools every round.
    sequential_s = sweep_s = start_s = end_s = 0.0
    sequential_runs, children = [], []
    for number in range(args.rounds):
        order = ("sequential", "sweep") if number % 2 == 0 else ("sweep", "sequential")
        for variant in order:
            if variant == "sequential":
                seconds, runs = sequential()
                sequential_s += seconds
                sequential_runs += runs
                round_sequential = seconds
            else:
                seconds, runs, start, end = sweep()
                sweep_s, start_s, end_s = sweep_s + seconds, start_s + start, end_s + end
                children += runs
                round_sweep = seconds
        print(
            f"round {number + 1} ({' then '.join(order)}): sequential {round_sequential:.1f} s, "
            f"sweep {round_sweep:.1f} s, ratio {round_sweep / round_sequential:.3f}"
        )
    rounds = args.rounds
    jobs_all = jobs * rounds
    # The sweep's wall time between its first run and its last, summed over rounds, for the
    # idle time of its workers.
    span = sweep_s - start_s - end_s

    seq_job = statistics.mean(_durations(sequential_runs))
    sweep_job = statistics.mean(_durations(children))
    busy = sum(_durations(children))
    idle = args.workers * span - busy
    ratio = sweep_s / sequential_s
    overhead = (args.workers * sweep_s - sequential_s) / jobs_all

    print()
    print(f"{f'measurement (summed over {rounds} rounds)':52} {'seconds':>9}")
    print(f"{'sequential, one run_notebook after another':52} {sequential_s:9.1f}")
    print(f"{'  per job (run created -> ended)':52} {seq_job:9.1f}")
    print(f"{f'sweep, LocalCluster of {args.workers} workers':52} {sweep_s:9.1f}")
    print(f"{'  per job (run created -> ended)':52} {sweep_job:9.1f}")
    print()
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"ratio sweep / sequential: {ratio:.3f}   target <= {TARGET_RATIO}   {verdict}")
    print(f"per-job overhead the sweep adds: {overhead:.2f} worker-seconds a job, of which")
    for label, seconds in (
        ("start: cluster, sweep run, first task on a fresh worker", start_s * args.workers),
        ("jobs slower side by side (sharing the cores)", busy - seq_job * jobs_all),
        ("idle workers between and after jobs", idle),
        ("end: table, sweep report, the last point's reports copied", end_s * args.workers),
    ):
        print(f"  {label:58} {seconds / jobs_all:6.2f}")
    print(f"  (start {start_s / rounds:.1f} s and end {end_s / rounds:.1f} s of wall time a sweep)")

    # A cluster worker runs one job alone on its cores: the sequential per-job time. The
    # start is paid once, the gaps per job and wave, the end (client-side copies) per job.
    gap = idle / jobs_all
    end_per_job = end_s / jobs_all
    start_s /= rounds
    print()
    print(
        f"model for {CLUSTER_WORKERS} workers: time = {start_s:.1f} s start "
        f"+ ceil(jobs / {CLUSTER_WORKERS}) x ({seq_job:.1f} s job + {gap:.2f} s gap) "
        f"+ jobs x {end_per_job:.2f} s at the end"
    )
    print(f"{'jobs':>6} {'sequential s':>13} {f'{CLUSTER_WORKERS} workers s':>13} {'speed-up':>9}")
    for count in CLUSTER_JOBS:
        alone = count * seq_job
        cluster = (
            start_s + math.ceil(count / CLUSTER_WORKERS) * (seq_job + gap) + count * end_per_job
        )
        print(f"{count:6d} {alone:13.0f} {cluster:13.0f} {alone / cluster:9.1f}")

    sizes = [_run_size(client, run) for run in children]
    values = statistics.mean(s[0] for s in sizes)
    files = statistics.mean(s[1] for s in sizes)
    megabytes = statistics.mean(s[2] for s in sizes) / 1e6
    demand = CLUSTER_WORKERS / (seq_job + gap)
    print()
    print(
        f"store writes of one notebook run: {values:.0f} params, metrics and tags, "
        f"{files:.0f} artifact files, {megabytes:.2f} MB (logged model not counted)"
    )
    print(
        f"{CLUSTER_WORKERS} busy workers end a run every {1 / demand:.2f} s: "
        f"{demand:.2f} runs/s, {demand * megabytes:.1f} MB/s of artifacts"
    )
    if args.no_postgres:
        return 0 if ratio <= TARGET_RATIO else 1
    runs_each = TEAM_RUNS // 4 if args.quick else TEAM_RUNS
    measured = _postgres_write_rate(home / "postgres", runs_each)
    if measured:
        capacity, test_values = measured
        print(
            f"store headroom at {CLUSTER_WORKERS} workers: {capacity / demand:.0f}x in runs "
            f"({capacity:.1f} runs/s taken, {demand:.2f} needed); a notebook run writes "
            f"{values / test_values:.1f}x the values and {files:.0f}x the files of a test run"
        )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
