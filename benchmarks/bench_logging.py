"""Logging cost of fraudkit's manager against plain MLflow, measured in the same process.

Prints two ratios (lower is better) with their targets:

* ``log_model_with_metadata`` / ``mlflow.sklearn.log_model(model, name=...,
  registered_model_name=...)`` at MLflow's defaults, for the same fitted model
  (target <= 0.15). MLflow's default infers pip requirements, which costs seconds.
* per-run cost of fraudkit's batched logging (10 params + 10 metrics + tags) / the fluent
  one-call-per-value equivalent (target <= 0.8).

Usage: ``python benchmarks/bench_logging.py [--runs N] [--models N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("MPLBACKEND", "Agg")


def _model():
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 29)), columns=[f"V{i}" for i in range(1, 30)])
    label = (frame["V1"] + rng.normal(size=2000) > 2).astype(int)
    return HistGradientBoostingClassifier(max_iter=30).fit(frame, label), frame


def _time(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per logging variant")
    parser.add_argument("--models", type=int, default=3, help="model logs per variant")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fraudkit-bench-"))
    os.environ["FRAUDKIT_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import mlflow
    import skops.io

    from fraudkit import mlflow_manager

    mlflow_manager.setup_experiments()
    mlflow.set_tracking_uri(mlflow_manager.tracking_uri)
    model, frame = _model()
    example = frame.head(5)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))

    def plain_model(i: int) -> None:
        with mlflow.start_run(experiment_id=mlflow_manager.experiment_id("training")):
            # MLflow's defaults, plus the trusted types skops refuses to save without.
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="plain_model",
                skops_trusted_types=trusted,
                input_example=example,
            )

    def kit_model(i: int) -> None:
        with mlflow_manager.start_training_run("bench"):
            mlflow_manager.log_model_with_metadata(
                model, "kit_model", stage="Staging", input_example=example
            )

    params = {f"param_{i}": i for i in range(10)}
    metrics = {f"metric_{i}": i / 10 for i in range(10)}

    def plain_run(i: int) -> None:
        with mlflow.start_run(experiment_id=mlflow_manager.experiment_id("training")):
            for key, value in params.items():
                mlflow.log_param(key, value)
            for key, value in metrics.items():
                mlflow.log_metric(key, value)

    def kit_run(i: int) -> None:
        with mlflow_manager.start_training_run("bench"):
            mlflow_manager.log_params(params)
            mlflow_manager.log_metrics(metrics)

    # Warm both paths once (imports, first registration) before timing.
    plain_model(-1)
    kit_model(-1)
    plain_run(-1)
    kit_run(-1)
    results = {}
    for name, action, count in (
        ("plain log_model", plain_model, args.models),
        ("fraudkit log_model_with_metadata", kit_model, args.models),
        ("plain fluent run (1 call per value)", plain_run, args.runs),
        ("fraudkit batched run", kit_run, args.runs),
    ):
        results[name] = statistics.median(_time(lambda a=action, i=i: a(i)) for i in range(count))

    model_ratio = results["fraudkit log_model_with_metadata"] / results["plain log_model"]
    run_ratio = results["fraudkit batched run"] / results["plain fluent run (1 call per value)"]
    print(f"store: {mlflow_manager.tracking_uri}")
    print(f"{'measurement':45} {'median s':>10}")
    for name, seconds in results.items():
        print(f"{name:45} {seconds:10.3f}")
    print()
    print(f"{'ratio':45} {'value':>10} {'target':>8}  verdict")
    for name, value, target in (
        ("log_model_with_metadata / plain log_model", model_ratio, 0.15),
        ("batched run / fluent run", run_ratio, 0.8),
    ):
        verdict = "PASS" if value <= target else "FAIL"
        print(f"{name:45} {value:10.3f} {target:8.2f}  {verdict}")
    return 0 if model_ratio <= 0.15 and run_ratio <= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
