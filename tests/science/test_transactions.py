"""The notebooks' data: one entry point for Kaggle's schema, the entity simulator and a file
in a declared schema, with the features computed in one pass or window by window."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.ieee import write_ieee_like

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, SchemaError
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.entities import HANDBOOK_DAYS, EntityDrift, HandbookWorld
from fraudkit.science.features import FeatureSpec, build_features
from fraudkit.science.schema import PRESETS
from fraudkit.science.simulate import Drift, TransactionSimulator
from fraudkit.science.traffic import load_windows, retraining_traffic
from fraudkit.science.transactions import load_or_simulate


def test_kaggle_is_todays_behaviour_unchanged() -> None:
    data = load_or_simulate(None, n_transactions=2_000, fraud_rate=0.05, seed=4)
    expected = TransactionSimulator(seed=4, fraud_rate=0.05).sample(2_000)
    pd.testing.assert_frame_equal(data.frame, expected)
    assert data.is_kaggle and data.spec is None and data.behaviour == []
    assert data.input_columns == FEATURE_COLUMNS and data.model_options == {}
    assert (data.label, data.amount) == ("Class", "Amount")
    split = data.split()
    assert split.time_column == "Time" and split.label_column == "Class"
    ceiling = data.ceiling(split.test, {"average_precision": 0.5})
    assert 0 < ceiling["bayes_average_precision"] <= 1
    assert ceiling["share_of_bayes_auprc"] == pytest.approx(
        0.5 / ceiling["bayes_average_precision"]
    )


def test_a_kaggle_file_has_no_simulator_and_no_ceiling(tmp_path: Path) -> None:
    frame = TransactionSimulator(seed=1, fraud_rate=0.05).sample(1_000)
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = load_or_simulate(tmp_path / "t.csv", "kaggle", n_transactions=10)
    assert data.simulator is None and data.ceiling(data.frame) == {}
    assert data.ceiling_scores(data.frame) is None
    assert len(data.frame) == 1_000


def test_handbook_simulates_about_the_rows_asked_with_their_features() -> None:
    data = load_or_simulate(None, "handbook", n_transactions=20_000, seed=2)
    assert 0.85 * 20_000 < len(data.frame) < 1.15 * 20_000
    assert data.spec is not None and data.spec.entities == ("CUSTOMER_ID", "TERMINAL_ID")
    assert set(data.behaviour) <= set(data.frame.columns)
    assert data.model_options == {"schema": PRESETS["handbook"], "behaviour": data.behaviour}
    assert data.input_columns[0] == "TX_AMOUNT"
    # One pass over the whole frame, point in time.
    expected = build_features(data.frame[data.frame.columns[:8]], data.schema, data.spec)
    pd.testing.assert_frame_equal(data.frame[data.behaviour], expected)
    split = data.split()
    ceiling = data.ceiling(split.test)
    assert 0 < ceiling["bayes_average_precision"] <= 1
    metadata = data.model_metadata(split.test)
    assert list(metadata["input_example"].columns) == data.input_columns
    assert metadata["schema"] == PRESETS["handbook"] and metadata["features"] == data.spec


def test_a_handbook_world_is_named_by_its_size_and_seed() -> None:
    world = HandbookWorld(100_000, seed=3)
    simulator = world.simulator()
    assert simulator.n_terminals == 2 * simulator.n_customers == 2 * world.n_customers
    assert simulator.seed == 3 and simulator.n_days > HANDBOOK_DAYS
    assert HandbookWorld.from_dict(world.to_dict()) == world
    with pytest.raises(DataValidationError, match="at least 1"):
        HandbookWorld(0)
    with pytest.raises(DataValidationError, match="does not describe a handbook world"):
        HandbookWorld.from_dict({"preset": "other", "n_transactions": 10, "seed": 0})
    with pytest.raises(DataValidationError, match="does not describe a handbook world"):
        HandbookWorld.from_dict({"preset": "handbook"})
    with pytest.raises(DataValidationError, match="seasonal drift"):
        world.simulator(EntityDrift(seasonal_amplitude=0.2))
    with pytest.raises(ConfigurationError, match="drift applies to the kaggle simulator"):
        load_or_simulate(None, "handbook", n_transactions=1_000, drift=Drift())


def test_a_file_in_its_own_schema(tmp_path: Path) -> None:
    path, schema = write_ieee_like(tmp_path, n_cards=300, days=20)
    data = load_or_simulate(path, schema, n_transactions=0)
    assert data.simulator is None and data.label == "isFraud"
    assert data.notes and "sorted stably" in data.notes[0]
    assert data.spec is not None and data.spec.entities == ("card1", "addr1")
    assert data.input_columns[-2:] == ["ProductCD", "P_emaildomain"]
    assert data.frame["TransactionDT"].is_monotonic_increasing
    # Other feature definitions: one window only.
    narrow = load_or_simulate(path, schema, n_transactions=0, features={"windows": ["1h"]})
    assert "card1_count_1h" in narrow.behaviour and "card1_count_1d" not in narrow.behaviour
    assert set(narrow.behaviour) <= set(narrow.frame.columns)
    assert "card1_count_1d" not in narrow.frame.columns


def test_only_presets_simulate_and_one_class_is_refused(tmp_path: Path) -> None:
    path, schema = write_ieee_like(tmp_path, n_cards=200, days=10)
    with pytest.raises(SchemaError, match="cannot be simulated"):
        load_or_simulate(None, schema, n_transactions=100)
    frame = pd.read_csv(path)
    frame.assign(isFraud=0).to_csv(tmp_path / "legit.csv", index=False)
    with pytest.raises(DataValidationError, match="single class"):
        load_or_simulate(tmp_path / "legit.csv", schema, n_transactions=0)


def test_windows_carry_the_state_forward_and_equal_one_pass(tmp_path: Path) -> None:
    path, schema = write_ieee_like(tmp_path, n_cards=400, days=20)
    data = load_or_simulate(path, schema, n_transactions=0)
    windows = data.windows(5, skip_days=3)
    assert len(windows) == 5
    together = pd.concat(windows)
    # Each window's features, computed from the history carried forward, are the batch
    # values bit for bit (the rows and the index are the frame's).
    batch = data.frame.loc[together.index, data.behaviour]
    pd.testing.assert_frame_equal(together[data.behaviour], batch)
    first = data.schema.timestamps(data.frame)[0]
    start = data.schema.timestamps(windows[0])[0]
    assert start >= first + 3 * 86_400 * 10**9
    with pytest.raises(DataValidationError, match="cannot fill"):
        data.windows(len(data.frame) + 1)


def test_features_for_a_model_recompute_other_definitions_and_refuse_other_schemas(
    tmp_path: Path,
) -> None:
    path, schema = write_ieee_like(tmp_path, n_cards=200, days=10)
    data = load_or_simulate(path, schema, n_transactions=0)
    assert data.features_for(data.schema, data.spec) is data.frame
    other = FeatureSpec(windows=("2h",), label_windows=())
    frame = data.features_for(data.schema, other)
    assert "card1_count_2h" in frame.columns and "card1_count_1h" not in frame.columns
    with pytest.raises(SchemaError, match="trained on schema kaggle"):
        data.features_for(None, None)
    kaggle = load_or_simulate(None, n_transactions=500)
    with pytest.raises(SchemaError, match="follow kaggle"):
        kaggle.require_schema(data.schema)


def test_handbook_monitoring_windows_drift_from_their_start() -> None:
    traffic = load_windows(
        None,
        "handbook",
        n_windows=4,
        window_size=3_000,
        drift_scenario="new_fraud_pattern",
        drift_start=2,
        seed=5,
    )
    assert traffic.drifted == [False, False, True, True]
    assert all(2_000 < len(w) < 4_500 for w in traffic.windows)
    # Compromised cards' frauds are now small: the scenario-3 amounts fall.
    frauds = [w[w["TX_FRAUD_SCENARIO"] == 3]["TX_AMOUNT"].median() for w in traffic.windows]
    assert max(frauds[2:]) < min(frauds[:2])
    assert set(traffic.data.behaviour) <= set(traffic.windows[0].columns)
    with pytest.raises(ConfigurationError, match="not simulated on the handbook"):
        load_windows(
            None, "handbook", n_windows=2, window_size=1_000, drift_scenario="covariate_shift"
        )


def test_monitoring_watches_the_world_the_model_learnt_from() -> None:
    training = load_or_simulate(None, "handbook", n_transactions=15_000, seed=2)
    assert training.world == HandbookWorld(15_000, 2).to_dict()
    traffic = load_windows(
        None,
        "handbook",
        n_windows=3,
        window_size=2_000,
        drift_scenario="new_fraud_pattern",
        drift_start=1,
        seed=9,  # not used: the world is the model's
        world=training.world,
    )
    start = pd.Timestamp("2018-04-01") + pd.Timedelta(days=HANDBOOK_DAYS)
    assert traffic.windows[0]["TX_DATETIME"].min() >= start
    assert traffic.drifted == [False, True, True]
    # The same customers and terminals: the training period is the same, row for row,
    # drift or no drift (it starts after training).
    raw = list(training.frame.columns[:8])
    past = traffic.data.frame
    past = past[past["TX_DATETIME"] < start].reset_index(drop=True)
    pd.testing.assert_frame_equal(past[raw], training.frame[raw])


def test_kaggle_monitoring_windows_are_the_simulators() -> None:
    traffic = load_windows(
        None, n_windows=3, window_size=500, drift_scenario="amount_inflation", drift_start=1, seed=1
    )
    expected = TransactionSimulator(seed=1).sample_windows(3, 500, drift_start=1)
    assert traffic.drifted == [False, True, True]
    pd.testing.assert_frame_equal(traffic.windows[0], expected[0])
    assert traffic.windows[1]["Amount"].median() > expected[1]["Amount"].median()


def test_retraining_traffic_continues_the_monitored_windows() -> None:
    settings = {
        "n_windows": 3,
        "window_size": 2_000,
        "drift_scenario": "new_fraud_pattern",
        "drift_severity": 1.0,
        "drift_start": 1,
        "fraud_rate": 0.01,
        "seed": 3,
    }
    kaggle = retraining_traffic(None, None, settings, evaluation_size=1_000)
    assert len(kaggle.frame) == 2 * 2_000 + 1_000 and kaggle.drift is not None
    world = HandbookWorld(15_000, seed=2).to_dict()
    # Windows as long as the year allows (capped): retraining rebuilds the same ones.
    for size in (2_000, 20_000):
        watched = load_windows(None, "handbook", world=world, **{**settings, "window_size": size})
        handbook = retraining_traffic(
            None, "handbook", {**settings, "window_size": size}, evaluation_size=1_000, world=world
        )
        seen = pd.concat(watched.windows[1:])
        again = handbook.frame.iloc[: len(seen)]
        pd.testing.assert_frame_equal(again, seen)  # features too, carried forward alike
        assert len(handbook.frame) > len(seen)  # and fresh traffic after them
        assert handbook.world == world


def test_a_recent_file_feeds_history_and_may_have_no_fraud_label_yet(tmp_path: Path) -> None:
    path, schema = write_ieee_like(tmp_path, n_cards=300, days=12)
    frame = pd.read_csv(path).assign(isFraud=0)  # no chargeback has arrived yet
    frame.to_csv(tmp_path / "recent.csv", index=False)
    traffic = load_windows(
        tmp_path / "recent.csv", schema, n_windows=3, window_size=0, history_days=4
    )
    data = traffic.data
    first = data.schema.timestamps(data.frame)[0]
    assert data.schema.timestamps(traffic.windows[0])[0] >= first + 4 * 86_400 * 10**9
    assert sum(map(len, traffic.windows)) < len(data.frame)  # the first days: history only
    with pytest.raises(DataValidationError, match="evaluation_size=100,000"):
        retraining_traffic(path, schema, {}, evaluation_size=100_000)


def test_before_keeps_the_rows_earlier_than_a_period() -> None:
    data = load_or_simulate(None, "handbook", n_transactions=8_000, seed=2)
    split = data.split()
    history = data.before(split.test)
    times = data.schema.timestamps(history.frame)
    assert len(history.frame) == len(data.frame) - len(split.test)
    assert times.max() < data.schema.timestamps(split.test).min()
    assert history.schema == data.schema and history.spec == data.spec
    with pytest.raises(DataValidationError, match="no transaction comes before"):
        data.before(data.frame)
    with pytest.raises(DataValidationError, match="non-empty"):
        data.before(data.frame.iloc[:0])
