"""The model card's rendering, on facts written by hand: what each section says when a fact
is there or missing, links to the right run, and recorded text that cannot break the page."""

from __future__ import annotations

import copy

from fraudkit.display.model_card import KNOWN_LIMITS, ModelCard, card_html, card_markdown

RUN, EVIDENCE = "a" * 32, "b" * 32
LINKS = {RUN: "http://ui/#/runs/a", EVIDENCE: "http://ui/#/runs/b"}
FACTS = {
    "format": 1,
    "model": {
        "name": "detector",
        "version": "2",
        "model_id": "m-1",
        "estimator": "CalibratedClassifierCV",
        "model_type": "random_forest",
        "schema": "kaggle",
        "registered": "2026-12-01 10:00 UTC",
        "run_id": RUN,
        "experiment_id": "1",
    },
    "threshold": {
        "value": 0.25,
        "source": "metrics['threshold']",
        "rule": "cost",
        "target": 0.8,
        "review_cost": 5.0,
    },
    "training": {
        "name": "training",
        "fingerprint": "f" * 16,
        "rows": 1000,
        "frauds": 12,
        "start": "0 s",
        "end": "100 s",
    },
    "evaluation": None,
    "metrics": [{"name": "average_precision", "value": 0.5, "dataset": "test (digest d)"}],
    "unattributed_metrics": 3,
    "calibration": None,
    "importances": None,
    "warnings": ["the training data holds only 12 frauds in 1,000 rows"],
}
MOVE = {
    "alias": "production",
    "from": "1",
    "to": "2",
    "time": "2026-12-02 09:00:00 UTC",
    "user": "ana",
    "reason": "beat v1 | <script>x</script>",
    "evidence_run_id": EVIDENCE,
    "action": "promote",
    "gate": {
        "metric": "average_precision",
        "candidate_value": 0.61,
        "holder_value": 0.55,
        "dataset": "test",
        "digest": "d",
        "source": "evaluation_data",
    },
}


def test_the_gate_of_a_move_links_to_its_evidence_run_and_text_cannot_break_the_table() -> None:
    markdown = card_markdown(ModelCard(FACTS, [MOVE], LINKS))
    row = next(line for line in markdown.splitlines() if line.startswith("| 2026-12-02"))
    assert row.count(" | ") == 6  # seven cells: the reason's pipe is escaped
    assert "beat v1 \\| &lt;script>x&lt;/script>" in row
    assert "average_precision [0.610][r2] against [0.550][r2] on test" in row
    assert f"[`{EVIDENCE}`][r2]" in row
    assert '[r2]: http://ui/#/runs/b "run ' + EVIDENCE + '"' in markdown
    assert "<script>" not in card_html(ModelCard(FACTS, [MOVE], LINKS))


def test_missing_facts_are_said_not_skipped() -> None:
    markdown = card_markdown(ModelCard(FACTS, [], LINKS))
    assert "Not measured: the version was registered without evaluation data." in markdown
    assert "No alias has pointed at version 2." in markdown
    assert "[3][r1] more metrics of the run name no dataset" in markdown
    assert "- the training data holds only 12 frauds in 1,000 rows." in markdown
    assert "by the `cost` rule with target [0.8][r1] and a review cost of [5][r1]" in markdown
    for _, page in KNOWN_LIMITS:
        assert f"`docs/{page}.md`" in markdown


def test_a_run_missing_from_the_store_is_named_not_linked() -> None:
    markdown = card_markdown(ModelCard(FACTS, [MOVE], {}))
    assert "[r1]" not in markdown and "http" not in markdown
    assert f"`{EVIDENCE}`" in markdown


def test_the_same_card_renders_the_same_bytes_and_the_facts_are_not_changed() -> None:
    facts = copy.deepcopy(FACTS)
    first = card_html(ModelCard(facts, [MOVE], LINKS))
    assert facts == FACTS
    assert first == card_html(ModelCard(copy.deepcopy(FACTS), [dict(MOVE)], dict(LINKS)))
