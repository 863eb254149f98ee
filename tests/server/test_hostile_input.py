"""Hostile input gets a 400 naming the field (or 413), never a 500 or a database's text.

Deeply nested JSON, huge UTC offsets, bad cursors, NUL bytes, oversized batches: each at every
door it can come through (intake, REST API, dashboard pages and forms), on both stores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from stepline import errors
from stepline.engine.engine import Engine
from stepline.server.body import MAX_JSON_DEPTH
from stepline.server.errors import INTERNAL, UNAVAILABLE, public_error
from stepline.server.intake import MAX_EVENTS_PER_REQUEST
from stepline.store.base import RunFilter, Store
from stepline.store.sql import SqlStore
from tests.server.conftest import Served, echo_app

pytestmark = pytest.mark.timeout(30)

FORM = {"content-type": "application/x-www-form-urlencoded"}
# The body the review sent: about 3 KB of nested arrays.
DEEP_ARRAYS = "[" * 1500 + "]" * 1500


def _nested(levels: int) -> Any:
    """An object `levels` deep in all: {"a": {"a": ... {} }}."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(echo_app("hostile/echo")))


def _stored(store: Store) -> tuple[int, int]:
    return len(store.list_events(None, 100, None)), len(store.list_runs(RunFilter()))


def _post_json(served: Served, path: str, body: str) -> httpx.Response:
    return served.http.post(path, content=body, headers={"content-type": "application/json"})


def _html_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


# -- deeply nested JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/e/k", DEEP_ARRAYS, "body"),
        ("/v1/events", DEEP_ARRAYS, "body"),
        ("/v1/functions/echo/invoke", DEEP_ARRAYS, "body"),
        ("/v1/functions/echo/invoke", f'{{"data": {{"x": {DEEP_ARRAYS}}}}}', "body"),
        ("/v1/runs/cancel", f'{{"function_id": {DEEP_ARRAYS}}}', "body"),
        # Deeper than the limit but shallow enough for Python's parser: the field is located.
        ("/e/k", json.dumps([{"name": "hostile/echo", "data": _nested(100)}]), "body[0].data"),
        ("/v1/events", json.dumps({"name": "hostile/echo", "data": _nested(100)}), "body.data"),
        ("/v1/functions/echo/invoke", json.dumps({"data": _nested(100)}), "body.data"),
    ],
)
def test_deeply_nested_json_is_a_400_naming_the_field(
    served: Served, store: Store, path: str, body: str, field: str
) -> None:
    response = _post_json(served, path, body)

    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["field"] == field
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in answer["error"]
    assert _stored(store) == (0, 0)


def test_json_nested_up_to_the_limit_is_accepted(served: Served, store: Store) -> None:
    # The body holds the event, which holds `data`: two levels above it.
    data = _nested(MAX_JSON_DEPTH - 2)
    response = _post_json(served, "/e/k", json.dumps({"name": "hostile/echo", "data": data}))
    assert response.status_code == 200, response.text
    [event] = store.list_events(None, 1, None)
    assert json.loads(event.data) == data


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("/events", {"name": "hostile/echo", "data": f'{{"x": {DEEP_ARRAYS}}}'}, "data"),
        ("/events", {"name": "hostile/echo", "data": json.dumps(_nested(101))}, "data.a"),
        ("/functions/echo/invoke", {"payload": DEEP_ARRAYS}, "payload"),
    ],
)
def test_dashboard_forms_refuse_deeply_nested_json(
    served: Served, store: Store, path: str, fields: dict[str, str], field: str
) -> None:
    text = _html_error(served.http.post(path, data=fields, headers=FORM), 400)
    assert f"{field}: is nested deeper than {MAX_JSON_DEPTH} levels" in text
    assert _stored(store) == (0, 0)


# -- oversized batches -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/e/k", "/v1/events"])
def test_more_events_than_the_cap_are_refused_whole(
    served: Served, store: Store, path: str
) -> None:
    events = [{"name": "other/thing"}] * (MAX_EVENTS_PER_REQUEST + 1)
    response = served.http.post(path, json=events)

    assert response.status_code == 413, response.text
    assert response.json()["field"] == "events"
    assert f"at most {MAX_EVENTS_PER_REQUEST} per request" in response.json()["error"]
    assert _stored(store) == (0, 0)


def test_a_batch_at_the_cap_is_accepted(served: Served, store: Store) -> None:
    response = served.http.post("/e/k", json=[{"name": "other/thing"}] * MAX_EVENTS_PER_REQUEST)
    assert response.status_code == 200
    assert len(response.json()["ids"]) == MAX_EVENTS_PER_REQUEST


# -- dashboard run filters ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/runs", "/runs/stream"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("created_after", "0001-01-01T00:00:00+14:00"),
        ("created_before", "9999-12-31T23:00:00-14:00"),
        ("created_before", "garbage"),
    ],
)
def test_run_filter_times_out_of_range_are_a_400(
    served: Served, path: str, name: str, value: str
) -> None:
    response = served.http.get(path, params={name: value})
    assert response.status_code == 400, response.text
    assert f"{name}: " in response.text


def test_runs_stream_with_an_unknown_cursor_is_refused_not_a_dropped_stream(
    served: Served,
) -> None:
    """As `GET /v1/runs/stream` does, before any event, so browsers do not reconnect forever."""
    response = served.http.get("/runs/stream", params={"before": "garbage"})
    api = served.http.get("/v1/runs/stream", params={"before": "garbage"})
    assert response.status_code == api.status_code and 400 <= api.status_code < 500
    assert response.text == api.json()["error"] and response.text.startswith("before: ")
    assert not response.headers["content-type"].startswith("text/event-stream")


# -- NUL bytes (PostgreSQL refuses them; SQLite must answer the same) ----------------------------

NUL_REQUESTS = [
    "/runs/%00",
    "/runs/a%00b/stream",
    "/events/%00",
    "/runs?function_id=%00",
    "/runs?event_id=%00",
    "/runs?before=%00",
    "/runs/stream?event_id=%00",
    "/events?name=%00",
    "/events?before=%00",
]


@pytest.mark.parametrize("path", NUL_REQUESTS)
def test_nul_bytes_in_dashboard_paths_and_filters_are_a_400(served: Served, path: str) -> None:
    response = served.http.get(path)
    assert response.status_code == 400, response.text
    assert "must not contain NUL" in response.text


@pytest.mark.parametrize(
    "path",
    ["/runs/%00/cancel", "/runs/%00/replay", "/functions/%00/pause", "/functions/%00/invoke"],
)
def test_nul_bytes_in_dashboard_form_paths_are_a_400(served: Served, path: str) -> None:
    response = served.http.post(path, data={"payload": "{}"}, headers=FORM)
    assert response.status_code == 400, response.text
    assert "must not contain NUL" in response.text


# -- server errors -----------------------------------------------------------------------------


@pytest.fixture
def broken_runs_table(store: Store) -> Iterator[None]:
    """The `runs` table renamed away, as a botched manual migration would leave it."""
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE runs RENAME TO runs_hidden_xyz"))
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE runs_hidden_xyz RENAME TO runs"))


@pytest.mark.usefixtures("broken_runs_table")
def test_server_errors_do_not_show_the_database_error(served: Served) -> None:
    for path in ("/v1/runs", "/runs", "/"):
        response = served.http.get(path)
        assert response.status_code in (500, 503), (path, response.text)
        assert UNAVAILABLE in response.text or INTERNAL in response.text
        body = response.text.lower()
        for leak in ("relation", "no such table", "does not exist", "from runs", "sqlalchemy"):
            assert leak not in body, (path, leak, response.text)


def test_error_mapping_hides_store_text_and_keeps_client_errors() -> None:
    secret = 'PostgreSQL error 22021: invalid byte sequence for encoding "UTF8": 0x00'
    assert public_error(errors.StoreError(secret)) == (500, INTERNAL)
    status, message = public_error(errors.StoreUnavailable(f"unavailable: {secret}"))
    assert status == 503 and secret not in message
    assert public_error(errors.InvalidInput("bad", "limit")) == (400, "limit: bad")
