"""A model card for every registered version: logged at registration, every number linked to
its run, brought up to date by ``fraudkit card``, byte-identical for the same version, and
linked from the report index."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support.served import register_detector

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.core.exceptions import RegistryError
from fraudkit.core.tags import MODEL_CARD_TAG
from fraudkit.display.model_card import card_html, card_markdown
from fraudkit.reports.index import build_report_index
from fraudkit.science.data import data_fingerprint, time_split
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.tracking.links import run_url
from fraudkit.tracking.model_cards import card_evidence, load_model_card

NAME = "carded_detector"
SECTIONS = (
    "## Intended use and the decision it makes",
    "## Data",
    "## Evaluation metrics",
    "## Calibration",
    "## Threshold",
    "## Small-sample warnings",
    "## Known limits",
    "## Features and their global importance",
    "## Alias history",
)
# A table cell or sentence number: digits with optional separators, percent or exponent.
NUMBER = re.compile(r"(?<![\w.`/-])-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?%?(?![\w`/-])")


@pytest.fixture
def registered(backend):
    return register_detector(NAME)


def _logged_card(version: str = "1") -> tuple[str, str, str]:
    """The card files logged with the version: Markdown, HTML and the folder."""
    client = mlflow_manager.client
    mv = client.get_model_version(NAME, version)
    folder = mv.tags[MODEL_CARD_TAG]
    local = Path(client.download_artifacts(mv.run_id, folder))
    return (
        (local / "model_card.md").read_text(),
        (local / "model_card.html").read_text(),
        folder,
    )


def _unlinked_numbers(markdown: str) -> list[str]:
    """Numbers in the card's sections and tables that do not link to a run."""
    body = markdown.split("\n[r1]:")[0]
    found = []
    for line in body.splitlines():
        if line.startswith(("#", "- ", "|---", "| what", "![")) or "fingerprint" in line:
            continue
        stripped = re.sub(r"\[[^\]]*\]\[r\d+\]", "", line)  # linked numbers
        stripped = re.sub(r"`[^`]*`", "", stripped)  # names, ids and digests
        stripped = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC", "", stripped)  # times
        stripped = re.sub(r"\d\.\d–\d\.\d", "", stripped)  # probability bands
        stripped = re.sub(r"^\| \d+ \|", "|", stripped)  # importance ranks
        stripped = re.sub(r"\bv\d+\b|version \d+|at least 30|fewer than 30", "", stripped)
        stripped = re.sub(r"at \d+ % (precision|recall)", "", stripped)  # metric labels
        found += NUMBER.findall(stripped)
    return found


def test_registration_logs_a_card_whose_every_number_links_to_its_run(registered) -> None:
    model, split, _ = registered
    markdown, html, folder = _logged_card()
    mv = mlflow_manager.client.get_model_version(NAME, "1")
    run = mlflow_manager.client.get_run(mv.run_id)
    assert folder == "model_card/v1"
    for section in SECTIONS:
        assert section in markdown
    # The facts are the data's and the model's own.
    assert f"`{data_fingerprint(split.train)}`" in markdown
    assert f"[{len(split.train):,}][r1]" in markdown
    assert f"[{int(split.train['Class'].sum())}][r1]" in markdown
    expected = predict_scores(model, split.test).sum()
    assert f"[{expected:.4g}][r1] expected frauds" in markdown
    assert f"against [{int(split.test['Class'].sum())}][r1] that happened" in markdown
    assert "Alerts at fraud probability ≥ [0.200][r1]" in markdown
    assert re.search(
        r"\| AUPRC \| `average_precision` \| \[[\d.]+\]\[r1\] \| test \(digest", markdown
    )
    assert "| production | v1 | promote |" in markdown.replace("`", "")
    # Every number links to the run it came from: the training run's UI page.
    assert _unlinked_numbers(markdown) == []
    base = mlflow_manager.tracking_uri if backend_is_server() else "http://127.0.0.1:5000"
    link = run_url(base, run.info.experiment_id, mv.run_id)
    assert f'[r1]: {link} "run {mv.run_id}"' in markdown
    # The HTML says the same, links resolved and the reliability diagram inlined.
    assert f'<a href="{link.replace("&", "&amp;")}"' in html
    assert "<svg" in html and "reliability.svg" not in html
    assert html.count("<h2>") == len(SECTIONS)


def backend_is_server() -> bool:
    return mlflow_manager.tracking_uri.startswith("http")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_fraudkit_card_is_byte_identical_and_brings_the_alias_history_up_to_date(
    registered, tmp_path: Path
) -> None:
    logged, logged_html, _ = _logged_card()
    runner = CliRunner()
    printed = runner.invoke(cli, ["card", f"models:/{NAME}/1"], catch_exceptions=False).stdout
    assert printed == logged  # nothing moved since registration
    # Another process renders the same bytes.
    other = subprocess.run(
        [sys.executable, "-m", "fraudkit", "card", f"models:/{NAME}@production"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert other == logged
    runner.invoke(cli, ["card", f"models:/{NAME}/1", "-o", str(tmp_path / "a.html")])
    assert (tmp_path / "a.html").read_text() == logged_html
    # A move with its evidence: the card now says who, when, why and on which run.
    with mlflow_manager.start_training_run("evidence") as evidence:
        mlflow_manager.log_metrics({"average_precision": 0.5})
    reason = "A/B test: <b>beat</b> | the champion"
    mlflow_manager.promote_model(
        NAME, "1", "Staging", reason=reason, evidence_run_id=evidence.info.run_id
    )
    updated = runner.invoke(cli, ["card", f"models:/{NAME}/1"], catch_exceptions=False).stdout
    assert updated != logged
    row = next(line for line in updated.splitlines() if "`staging`" in line)
    assert "A/B test: &lt;b>beat&lt;/b> \\| the champion" in row
    assert re.search(r"\[`" + evidence.info.run_id + r"`\]\[r2\]", row)
    assert updated.count("[r2]: ") == 1
    runner.invoke(cli, ["card", f"models:/{NAME}/1", "-o", str(tmp_path / "b" / "card.md")])
    assert (tmp_path / "b" / "card.md").read_text() == updated
    assert (tmp_path / "b" / "reliability.svg").read_text().startswith("<?xml")
    html = load_model_card(f"models:/{NAME}/1")
    assert "<b>beat</b>" not in card_html(html)  # recorded text is shown, never run


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_small_test_period_is_warned_about_on_the_card(backend) -> None:
    split = time_split(TransactionSimulator(seed=2, fraud_rate=0.01).sample(3_000))
    model = train_model(split.train, "logistic_regression", calibration_df=split.validation)
    mlflow_manager.log_model_with_metadata(
        model, NAME, stage="Staging", evaluation_dataset=split.test, training_data=split.train
    )
    card = card_markdown(load_model_card(f"models:/{NAME}@staging"))
    warnings = card.split("## Small-sample warnings")[1].split("## Known limits")[0]
    frauds = int(split.test["Class"].sum())
    assert frauds < 30
    assert f"the test data holds only {frauds} fraud" in warnings
    # Without a rule recorded on the run, the card says where the threshold came from.
    assert "Given as `the default`" in card


def test_the_reliability_diagram_renders_the_same_bytes_twice() -> None:
    split = time_split(TransactionSimulator(seed=5, fraud_rate=0.01).sample(6_000))
    model = train_model(split.train, "random_forest", calibration_df=split.validation)
    kwargs = {"schema": None, "evaluation": split.test, "evaluation_name": "test", "training": None}
    (facts, svg), (again, svg_again) = (
        card_evidence(model, **kwargs),
        card_evidence(model, **kwargs),
    )
    # The forest sums its trees on several threads: probabilities agree to the last bits.
    assert svg is not None and svg == svg_again
    assert facts["importances"] == again["importances"]
    assert np.isclose(facts["calibration"]["brier_score"], again["calibration"]["brier_score"])
    assert "<dc:date>" not in svg
    names = [name for name, _ in facts["importances"]["values"]]
    assert facts["importances"]["method"].startswith("The forest's impurity importances")
    assert set(names) >= {"V17", "Amount"}
    assert np.isclose(sum(b["rows"] for b in facts["calibration"]["bins"]), len(split.test))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_version_without_a_card_is_refused_with_the_fix(registered) -> None:
    mlflow_manager.client.delete_model_version_tag(NAME, "1", MODEL_CARD_TAG)
    with pytest.raises(RegistryError, match=r"has no model card.*log_model_with_metadata"):
        load_model_card(f"models:/{NAME}/1")
    result = CliRunner().invoke(cli, ["card", f"models:/{NAME}/1"])
    assert result.exit_code == 1 and "has no model card" in result.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_report_index_links_each_alias_card_to_its_model_card(
    registered, fraudkit_home: Path
) -> None:
    index = build_report_index(fraudkit_home / "reports" / "index.html")
    page = index.read_text()
    assert f'<a href="model_cards/{NAME}-v1.html">Model card of v1</a>' in page
    written = (index.parent / "model_cards" / f"{NAME}-v1.html").read_text()
    # A local store's pages are read offline: no UI link, and this run has no report page.
    card = load_model_card(f"models:/{NAME}/1")
    assert "http" in card_html(card) and "127.0.0.1" not in written
    assert written == card_html(replace(card, links={}))


@pytest.mark.notebook
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_in_the_report_index_a_card_links_its_numbers_to_the_runs_report(
    backend, fraudkit_home: Path
) -> None:
    from fraudkit.runner.execution import run_notebook

    run_notebook("training", {"n_transactions": 20_000}, progress=False)
    index = build_report_index(fraudkit_home / "reports" / "index.html")
    pages = list((index.parent / "model_cards").glob("*.html"))
    assert len(pages) == 1
    written = pages[0].read_text()
    reports = re.findall(r'href="(\.\./runs/[^"]+/report\.html)"', written)
    assert reports and all((pages[0].parent / r).is_file() for r in reports)
    assert "http" not in written.split("<svg")[0]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_card_that_cannot_be_logged_leaves_no_version(backend, monkeypatch) -> None:
    split = time_split(TransactionSimulator(seed=2, fraud_rate=0.01).sample(3_000))
    model = train_model(split.train, "logistic_regression", calibration_df=split.validation)
    client = mlflow_manager.client

    def refuse(*args, **kwargs):
        raise OSError("artifact store full")

    monkeypatch.setattr(type(client), "log_artifacts", refuse)
    with pytest.raises(OSError, match="artifact store full"):
        mlflow_manager.log_model_with_metadata(
            model, NAME, stage="Staging", evaluation_dataset=split.test
        )
    assert not client.search_model_versions(f"name = '{NAME}'")
    runs = client.search_runs([mlflow_manager.setup_experiments()["training"]])
    assert [run.info.status for run in runs] == ["FAILED"]
