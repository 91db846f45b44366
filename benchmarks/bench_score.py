"""Benchmark batch scoring: rows a second and peak memory, chunked, on Dask, and plain.

Registers the default model (calibrated gradient boosting, trained on 100,000 simulated
Kaggle-schema rows) in a throwaway store, writes a CSV of ``--rows`` fresh rows (1,000,000
by default) and a quarter of it, and scores them three ways, each in a fresh process
(reading the CSV and loading the model included):

* **plain**: ``pandas.read_csv`` of the whole file, then
  ``mlflow.pyfunc.load_model(uri).predict(frame, params={"reasons": 0})``;
* **local**: :func:`fraudkit.scoring.batch.score_file` in chunks of 100,000 rows, no reasons;
* **2 workers**: the same on a local Dask cluster of two worker processes.

Peak memory is the largest sum of resident memory over the process and its children
(Dask's workers), sampled every 20 ms. Targets: local at least as fast as plain; local
peak memory flat in the file's size (the full file's peak at most 1.25x the quarter's); two
workers at most 0.6x the local time.

Usage: ``python benchmarks/bench_score.py [--quick] [--rows N]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil

TRAIN_ROWS = 100_000
TARGET_LOCAL_VS_PLAIN = 1.0  # local time / plain time, at most
TARGET_FLAT = 1.25  # local peak memory, full file / quarter file, at most
TARGET_WORKERS = 0.6  # 2-worker time / local time, at most
URI = "models:/bench_scored@production"

SETUP = """
from fraudkit import mlflow_manager
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.data import time_split
from fraudkit.science.metrics import evaluate
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.simulate import TransactionSimulator

split = time_split(TransactionSimulator(seed=1, fraud_rate=0.005).sample({train}))
model = train_model(split.train, calibration_df=split.validation)
metrics = evaluate(split.test["Class"], predict_scores(model, split.test), threshold=0.5)
mlflow_manager.log_model_with_metadata(
    model, "bench_scored", metrics=metrics, stage="Production",
    input_example=split.test[FEATURE_COLUMNS].head(5),
)
for rows, name in (({rows}, "full.csv"), ({rows} // 4, "quarter.csv")):
    TransactionSimulator(seed=2, fraud_rate=0.005).sample(rows).to_csv(name, index=False)
"""

PLAIN = """
import time, mlflow, pandas as pd
from fraudkit import mlflow_manager
start = time.perf_counter()
mlflow.set_tracking_uri(mlflow_manager.tracking_uri)
frame = pd.read_csv("{file}")
model = mlflow.pyfunc.load_model("{uri}")
scores = model.predict(frame[model.metadata.get_input_schema().input_names()],
                       params={{"reasons": 0}})
print(time.perf_counter() - start, len(scores))
"""

SCORE = """
import time
from fraudkit.scoring.batch import score_file
start = time.perf_counter()
result = score_file("{uri}", "{file}", "{output}", reasons=0, workers={workers})
print(time.perf_counter() - start, result.totals.rows)
"""


def _measure(code: str, folder: Path) -> tuple[float, int, float]:
    """Run ``code`` in a fresh interpreter; its seconds, rows and peak tree memory (MB)."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak, watched = 0, psutil.Process(process.pid)

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"a measured run failed (exit {process.returncode}):\n{code}")
    seconds, rows = out.strip().splitlines()[-1].split()
    return float(seconds), int(rows), peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(prefix="bench-score-") as home:
        folder = Path(home)
        os.environ["FRAUDKIT_HOME"] = home
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        setup = SETUP.format(train=TRAIN_ROWS, rows=rows)
        subprocess.run([sys.executable, "-c", setup], cwd=folder, check=True,
                       stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # fmt: skip
        runs = {
            "plain": PLAIN.format(file="full.csv", uri=URI),
            "local": SCORE.format(uri=URI, file="full.csv", output="local", workers=None),
            "local, quarter file": SCORE.format(
                uri=URI, file="quarter.csv", output="quarter", workers=None
            ),
            "2 workers": SCORE.format(uri=URI, file="full.csv", output="dask", workers=2),
        }
        results = {}
        for label, code in runs.items():
            seconds, scored, peak = _measure(code, folder)
            results[label] = {"rows": scored, "seconds": seconds, "peak_mb": peak}
            rate = f"{scored / seconds:>9,.0f} rows/s"
            print(f"{label:>20}: {scored:>9,} rows in {seconds:6.1f} s = {rate}, "
                  f"peak memory {peak:7.0f} MB", flush=True)  # fmt: skip
    local, plain = results["local"], results["plain"]
    checks = {
        "local time / plain time": (local["seconds"] / plain["seconds"], TARGET_LOCAL_VS_PLAIN),
        "local peak, full / quarter file": (
            local["peak_mb"] / results["local, quarter file"]["peak_mb"], TARGET_FLAT),
        "2-worker time / local time": (
            results["2 workers"]["seconds"] / local["seconds"], TARGET_WORKERS),
    }  # fmt: skip
    for name, (ratio, target) in checks.items():
        verdict = "PASS" if ratio <= target else "FAIL"
        print(f"{name:>32}: {ratio:5.2f} (target <= {target}) {verdict}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
