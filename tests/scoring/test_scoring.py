"""``fraudkit score``: the served model's rows for every row of a file, chunked or on Dask,
logged, resumable, exact, and refusing malformed rows by their row number."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support.served import register_detector
from support.servers import ModelServer

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.core.exceptions import DataValidationError, ScoringError
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.core.tags import (
    DATA_FINGERPRINT_TAG,
    ERROR_TAG,
    MODEL_VERSION_TAG,
    SCORING_RETRIED_TAG,
    SCORING_TAG,
)
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.reasons import ReasonExplainer
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.scoring import parts
from fraudkit.scoring.batch import score_file
from fraudkit.scoring.cluster import plan_blocks, read_block
from fraudkit.tracking.registry import load_model

NAME = "scored_detector"
URI = f"models:/{NAME}@production"


@pytest.fixture
def registered(backend):
    """A calibrated logistic model registered at threshold 0.2, and its time split."""
    model, split, _ = register_detector(NAME)
    return model, split


def _transactions(rows: int, seed: int = 11) -> pd.DataFrame:
    return TransactionSimulator(seed=seed, fraud_rate=0.01).sample(rows)


def _scores(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values("row").reset_index(drop=True)


def _post(url: str, frame: pd.DataFrame) -> pd.DataFrame:
    # json.dumps writes every float exactly (DataFrame.to_json keeps 10 digits).
    split = {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"dataframe_split": split}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return pd.DataFrame(json.loads(response.read())["predictions"])


@pytest.mark.server
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_five_paths_give_the_same_rows_bit_for_bit(registered, tmp_path, fraudkit_home):
    """The notebook path, pyfunc, `mlflow models serve`, `fraudkit score` and `fraudkit
    score` on a 2-worker cluster, on the same 100,000 rows."""
    model, split = registered
    data = _transactions(100_000)
    data.to_csv(tmp_path / "month.csv", index=False)
    features = data[FEATURE_COLUMNS]
    # 1. The notebooks' own scoring: the fitted model's probability and reasons.
    notebook = ReasonExplainer(model, split.train).reasons(features, 3)
    probability = predict_scores(model, data)
    # 2. pyfunc.
    pyfunc = load_model(URI).predict(features)
    # 3. mlflow models serve, over HTTP, 25,000 rows a request.
    with ModelServer(URI, mlflow_manager.tracking_uri, fraudkit_home) as server:
        served = pd.concat(
            [_post(server.url, features.iloc[i : i + 25_000]) for i in range(0, 100_000, 25_000)],
            ignore_index=True,
        )
    # 4. fraudkit score, local chunks; 5. on a local cluster of two workers.
    runner = CliRunner()
    for folder, extra in (("local", []), ("dask", ["--workers", "2"])):
        args = ["score", URI, str(tmp_path / "month.csv"), "-o", str(tmp_path / folder)]
        result = runner.invoke(cli, [*args, "--chunk-rows", "30000", "--quiet", *extra])
        assert result.exit_code == 0, result.output
    local, dask = _scores(tmp_path / "local"), _scores(tmp_path / "dask")

    assert local["row"].tolist() == list(range(100_000))
    decided = local.drop(columns="row")
    pd.testing.assert_frame_equal(decided, pyfunc, check_exact=True)
    pd.testing.assert_frame_equal(dask, local, check_exact=True)
    pd.testing.assert_frame_equal(served, pyfunc, check_exact=True, check_dtype=False)
    np.testing.assert_array_equal(decided["fraud_probability"], probability)
    pd.testing.assert_frame_equal(decided.iloc[:, 4:], notebook, check_exact=True)
    assert decided["alert"].sum() > 0 and set(decided["model_version"]) == {"1"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_scoring_run_records_version_fingerprint_and_alert_rates(registered, tmp_path):
    data = _transactions(5_000)
    data.to_parquet(tmp_path / "day.parquet", row_group_size=2_000)
    result = score_file(URI, tmp_path / "day.parquet", tmp_path / "out", chunk_rows=1_500)
    run = mlflow_manager.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[SCORING_TAG] == "true" and run.data.tags[MODEL_VERSION_TAG] == "1"
    digest = hashlib.sha256((tmp_path / "day.parquet").read_bytes()).hexdigest()
    assert run.data.tags[DATA_FINGERPRINT_TAG] == digest == run.data.params["input_fingerprint"]
    scores = _scores(tmp_path / "out")
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == result.parts == 4
    metrics = run.data.metrics
    assert metrics["rows"] == 5_000 and metrics["alerts"] == scores["alert"].sum()
    assert metrics["alert_rate"] == pytest.approx(scores["alert"].mean())
    assert metrics["expected_fraud_rate"] == pytest.approx(scores["fraud_probability"].mean())
    alerted = scores.loc[scores["alert"], "fraud_probability"]
    assert metrics["expected_alert_precision"] == pytest.approx(alerted.mean())
    assert run.data.params["model_uri"] == "models:/scored_detector/1"  # the alias, pinned


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_malformed_row_is_named_and_nothing_is_scored_as_nan(registered, tmp_path):
    data = _transactions(3_000)
    data["V3"] = data["V3"].astype(object)
    data.loc[2_406, "V3"] = "abc"  # row 2,407 of the data, in the third chunk of 1,000
    path = tmp_path / "bad.csv"
    data.to_csv(path, index=False)
    before = path.read_bytes()
    with pytest.raises(DataValidationError, match=r"column V3, row 2407: 'abc' is not a number"):
        score_file(URI, path, tmp_path / "out", chunk_rows=1_000)
    assert path.read_bytes() == before
    assert parts.done_parts(tmp_path / "out") == {0, 1}  # the chunk holding it: nothing
    (run,) = mlflow_manager.client.search_runs(
        [mlflow_manager.experiment_id("monitoring")], f"tags.`{SCORING_TAG}` = 'true'"
    )
    assert run.info.status == "FAILED" and "row 2407" in run.data.tags["fraudkit.error"]
    # A missing feature column is named before anything is scored.
    data.drop(columns="V14").to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataValidationError, match="missing column"):
        score_file(URI, tmp_path / "short.csv", tmp_path / "short")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_chunk_read_ahead_fails_the_job_in_its_turn(registered, tmp_path):
    """The next chunk is read while one is scored: a line the parser cannot read stops the
    job after the chunks before it, named by where it stands, and the run says FAILED."""
    text = _transactions(3_000).to_csv(index=False).splitlines()
    text[2_501] += ",1,2,3"  # data row 2,501: more fields than the header
    (tmp_path / "day.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataValidationError, match=r"day.csv: cannot read the file after row 2000"):
        score_file(URI, tmp_path / "day.csv", tmp_path / "out", chunk_rows=1_000)
    assert parts.done_parts(tmp_path / "out") == {0, 1}
    (run,) = mlflow_manager.client.search_runs([mlflow_manager.experiment_id("monitoring")])
    assert run.info.status == "FAILED" and "after row 2000" in run.data.tags[ERROR_TAG]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_interrupted_job_resumes_from_its_written_parts(registered, tmp_path, monkeypatch):
    from fraudkit.scoring.model import ScoredModel

    _transactions(5_000).to_csv(tmp_path / "day.csv", index=False)
    whole = score_file(URI, tmp_path / "day.csv", tmp_path / "whole", chunk_rows=1_000)
    decide, calls = ScoredModel.decide, []

    def interrupted(self, chunk, frame, params):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return decide(self, chunk, frame, params)

    monkeypatch.setattr(ScoredModel, "decide", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score_file(URI, tmp_path / "day.csv", tmp_path / "out", chunk_rows=1_000)
    assert parts.done_parts(tmp_path / "out") == {0, 1}
    killed = mlflow_manager.client.search_runs(
        [mlflow_manager.experiment_id("monitoring")], "attributes.status = 'KILLED'"
    )
    assert len(killed) == 1
    monkeypatch.setattr(ScoredModel, "decide", decide)
    again = score_file(URI, tmp_path / "day.csv", tmp_path / "out", chunk_rows=1_000)
    assert again.reused == 2 and again.totals.rows == whole.totals.rows == 5_000
    pd.testing.assert_frame_equal(_scores(tmp_path / "out"), _scores(tmp_path / "whole"))
    assert again.totals.alerts == whole.totals.alerts
    # Another job is not mixed into the folder.
    with pytest.raises(ScoringError, match=r"another job .*reasons"):
        score_file(URI, tmp_path / "day.csv", tmp_path / "out", chunk_rows=1_000, reasons=0)


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_worker_killed_mid_job_leaves_every_row_once_and_the_run_says_so(registered, tmp_path):
    """SIGKILL to the worker that starts the first part: the scheduler runs that part again
    elsewhere; the output holds each row once and the run names the part scored twice."""
    _transactions(40_000).to_csv(tmp_path / "month.csv", index=False)
    output = tmp_path / "out"
    attempts = output / "_attempts"
    killed: list[int] = []

    def kill_first_worker() -> None:
        while not killed:
            markers = list(attempts.glob("*")) if attempts.is_dir() else []
            if markers:
                pid = int(markers[0].name.split(".")[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(int(markers[0].name.split(".")[0]))
                return
            threading.Event().wait(0.01)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    result = score_file(URI, tmp_path / "month.csv", output, chunk_rows=10_000, workers=2)
    killer.join(timeout=5)
    assert killed and killed[0] in result.retried
    # A malformed row is named on Dask too, by the worker that found it.
    data = pd.read_csv(tmp_path / "month.csv")
    data["V3"] = data["V3"].astype(object)
    data.loc[24_406, "V3"] = "abc"
    data.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match=r"column V3, row 24407: 'abc'"):
        score_file(URI, tmp_path / "bad.csv", tmp_path / "bad", chunk_rows=10_000, workers=2)
    scores = _scores(output)
    assert scores["row"].tolist() == list(range(40_000))
    tags = mlflow_manager.client.get_run(result.run_id).data.tags
    assert tags[SCORING_RETRIED_TAG] == ",".join(map(str, result.retried))
    local = score_file(URI, tmp_path / "month.csv", tmp_path / "local", chunk_rows=10_000)
    pd.testing.assert_frame_equal(scores, _scores(tmp_path / "local"), check_exact=True)
    assert local.retried == []


def test_blocks_cut_a_csv_at_line_breaks_every_n_rows(tmp_path):
    frame = pd.DataFrame({"a": range(10), "b": [f"x{i}" for i in range(10)]})
    path = tmp_path / "t.csv"
    path.write_text(frame.to_csv(index=False).rstrip("\n"))  # no line break at the end
    blocks = plan_blocks(path, 4)
    assert [(b.first_row, b.rows) for b in blocks] == [(0, 4), (4, 4), (8, 2)]
    read = pd.concat([read_block(path, b) for b in blocks])
    pd.testing.assert_frame_equal(read, frame)
    path.write_text(frame.to_csv(index=False))  # a line break at the end, as usual
    for rows, expected in (
        (5, [(0, 5), (5, 5)]),
        (20, [(0, 10)]),
        (1, [(i, 1) for i in range(10)]),
    ):
        blocks = plan_blocks(path, rows)
        assert [(b.first_row, b.rows) for b in blocks] == expected
        pd.testing.assert_frame_equal(pd.concat([read_block(path, b) for b in blocks]), frame)
    with pytest.raises(ScoringError, match="decompress"):
        frame.to_csv(tmp_path / "t.csv.gz", index=False)
        plan_blocks(tmp_path / "t.csv.gz", 4)


def test_the_parts_must_hold_each_row_once(tmp_path):
    job = {"model_uri": "models:/m/1", "input_fingerprint": "x"}
    assert parts.open_output(tmp_path / "out", job) == set()
    parts.write_part(tmp_path / "out", 0, pd.DataFrame({"row": [0, 1, 2]}))
    parts.write_part(tmp_path / "out", 1, pd.DataFrame({"row": [2, 3]}))
    with pytest.raises(ScoringError, match="row 2 is there 2 times"):
        parts.verify_rows(tmp_path / "out", 4)
    parts.write_part(tmp_path / "out", 1, pd.DataFrame({"row": [4]}))
    with pytest.raises(ScoringError, match="row 3 is missing"):
        parts.verify_rows(tmp_path / "out", 5)
    assert parts.open_output(tmp_path / "out", job) == {0, 1}
    with pytest.raises(ScoringError, match="another job"):
        parts.open_output(tmp_path / "out", {**job, "input_fingerprint": "y"})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ScoringError, match="not empty"):
        parts.open_output(tmp_path / "other", job)
    assert not list((tmp_path / "out").glob(".*.tmp"))  # no temporary file left


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cli_refuses_workers_with_a_scheduler_and_a_model_that_is_not_registered(backend, tmp_path):
    _transactions(100).to_csv(tmp_path / "t.csv", index=False)
    runner = CliRunner()
    both = ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"]
    result = runner.invoke(cli, ["score", URI, str(tmp_path / "t.csv"), "-o", "x", *both])
    assert result.exit_code == 1 and "not both" in result.output
    result = runner.invoke(cli, ["score", "runs:/abc/model", str(tmp_path / "t.csv"), "-o", "x"])
    assert result.exit_code == 1 and "names no registered version" in result.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_behavioural_features_come_from_the_raw_files_own_history(backend, tmp_path):
    """A model on the entity simulator's schema: ``fraudkit score`` computes its features
    chunk by chunk from the raw rows, equal to the whole-file features the model was
    trained on, so its rows equal pyfunc's on the precomputed frame."""
    from fraudkit.science.transactions import load_or_simulate

    data = load_or_simulate(None, "handbook", n_transactions=12_000, seed=3)
    split = data.split()
    options = {**data.model_options, "calibration_df": split.validation}
    model = train_model(split.train, "logistic_regression", **options)
    uri = "models:/handbook_detector@production"
    mlflow_manager.log_model_with_metadata(
        model,
        "handbook_detector",
        stage="Production",
        **data.model_metadata(split.test, split.train),
    )
    raw = data.frame[[column for _, column in data.schema.column_roles()]]
    raw.to_parquet(tmp_path / "raw.parquet", row_group_size=2_500)
    result = score_file(uri, tmp_path / "raw.parquet", tmp_path / "out", chunk_rows=2_500)
    scores = _scores(tmp_path / "out")
    expected = load_model(uri).predict(data.frame[data.input_columns])
    assert result.totals.rows == len(data.frame) and result.parts == 5
    pd.testing.assert_frame_equal(scores.drop(columns=["row", data.schema.id]), expected)
    assert scores[data.schema.id].tolist() == data.frame[data.schema.id].tolist()
    with pytest.raises(ScoringError, match="behavioural features"):
        score_file(uri, tmp_path / "raw.parquet", tmp_path / "dask", workers=2)
    # Rows out of time order cannot carry their history: refused, not scored wrongly.
    raw.iloc[::-1].to_parquet(tmp_path / "reversed.parquet")
    with pytest.raises(DataValidationError, match="sorted by time"):
        score_file(uri, tmp_path / "reversed.parquet", tmp_path / "reversed")
