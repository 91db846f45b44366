"""Shared store helpers: paged search, quoting, error translation, retries, run lookups."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from fraudkit.core.exceptions import (
    ConfigurationError,
    RegistryError,
    TrackingError,
    TrackingUnavailableError,
)
from fraudkit.tracking import store


class _Page(list):
    def __init__(self, items, token):
        super().__init__(items)
        self.token = token


def test_paged_follows_tokens_until_none_or_empty():
    pages = {None: _Page([1, 2], "a"), "a": _Page([3], "b"), "b": _Page([4], "")}
    seen = []

    def search(page_token=None, **kwargs):
        seen.append((page_token, kwargs))
        return pages[page_token]

    assert list(store.paged(search, filter_string="x")) == [1, 2, 3, 4]
    assert [token for token, _ in seen] == [None, "a", "b"]
    assert seen[0][1] == {"filter_string": "x", "max_results": store.PAGE_SIZE}
    # A caller's own page size wins.
    seen.clear()
    list(store.paged(search, max_results=7))
    assert seen[0][1] == {"max_results": 7}


def test_quote_picks_the_quote_the_value_lacks():
    assert store.quote("fraud") == "'fraud'"
    assert store.quote("fraud's") == '"fraud\'s"'
    with pytest.raises(RegistryError, match="holds both quote characters"):
        store.quote("""a'b"c""")


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (MlflowException("Run 'x' not found"), TrackingError, "run 'x' not found in"),
        (OSError("Connection refused"), TrackingUnavailableError, "cannot reach"),
        (ImportError("No module named 'MySQLdb'"), ConfigurationError, "database driver"),
        (PermissionError("read-only"), ConfigurationError, "writable folder"),
        (MlflowException("boom"), TrackingError, "failed on"),
    ],
)
def test_store_error_names_the_problem_and_the_fix(error, kind, text):
    found = store.store_error(error, "http://alice:pw@127.0.0.1:9", what="run 'x'")
    assert type(found) is kind
    assert text in str(found)
    assert "pw" not in str(found) and "alice:***@127.0.0.1:9" in str(found)


def test_retrying_retries_only_collisions(monkeypatch):
    monkeypatch.setattr(store.time, "sleep", lambda _: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("database is locked")
        return "ok"

    assert store.retrying(flaky) == "ok" and len(calls) == 3
    with pytest.raises(ValueError):
        store.retrying(lambda: (_ for _ in ()).throw(ValueError("other")))


def test_find_run_and_run_metrics(backend):
    from fraudkit import mlflow_manager

    client = mlflow_manager.client
    with mlflow_manager.start_training_run("store_check") as run:
        mlflow_manager.log_metrics({"threshold": 0.3})
    assert store.run_metrics(client, run.info.run_id) == {"threshold": 0.3}
    assert store.find_run(client, None) is None
    assert store.find_run(client, "0" * 32) is None
    assert store.run_metrics(client, "0" * 32) == {}


def test_open_client_reports_an_unusable_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match="writable folder"):
        store.open_client(f"sqlite:///{blocker}/sub/mlflow.db")
