"""The HTTP surface: Inngest-shaped intake and REST v1, with each kind of bad input rejected."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import stepline
from stepline.engine import operations
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.events import new_id
from stepline.engine.routing import Routing
from stepline.server import models
from stepline.server.app import API
from stepline.server.auth import AuthSettings
from stepline.store.base import FunctionRecord, NewRun, RunFilter, Store
from tests.server.conftest import OPTION_SUMMARIES, Served, options_app, sse_events


def _app() -> stepline.App:
    app = stepline.App("api-test")

    @app.function(id="echo", triggers=[stepline.event("test/echo")], retries=1)
    def echo(ctx: Any) -> dict[str, Any]:
        ctx.progress(1, 2, "half")
        ctx.count("seen", 3)
        value = ctx.step.run("read", lambda: ctx.event["data"])
        ctx.log.info("echoing")
        return {"echo": value}

    @app.function(id="napper", triggers=[stepline.event("test/nap")])
    def napper(ctx: Any) -> str:
        ctx.step.sleep("nap", "1h")
        return "rested"

    return app


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(_app()))


def _events(store: Store) -> int:
    return len(store.list_events(None, 500, None))


def _wait(served: Served, run_id: str) -> dict[str, Any]:
    run = served.engine.wait_for_run(run_id, 10)
    assert run.ended
    body: dict[str, Any] = served.http.get(f"/v1/runs/{run_id}").json()["data"]
    return body


def test_intake_returns_inngest_shape_and_runs_start(served: Served) -> None:
    response = served.http.post("/e/anykey", json={"name": "test/echo", "data": {"x": 1}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200 and len(body["ids"]) == 1
    runs = served.http.get(f"/v1/events/{body['ids'][0]}/runs").json()["data"]
    assert [r["function_id"] for r in runs] == ["echo"]
    run = _wait(served, runs[0]["id"])
    assert run["status"] == "COMPLETED"
    assert run["output"] == {"echo": {"x": 1}}
    assert run["counters"] == {"seen": 3}
    assert run["progress"]["done"] == 1 and run["progress"]["total"] == 2
    assert [s["id"] for s in run["steps"]] == ["read"]
    assert run["steps"][0]["duration_seconds"] is not None
    assert [log["message"] for log in run["logs"]] == ["echoing"]


def test_batch_intake_returns_ids_in_order(served: Served) -> None:
    body = served.http.post(
        "/e/k", json=[{"name": "test/other", "id": "a-1"}, {"name": "test/other", "id": "b-2"}]
    ).json()
    assert len(body["ids"]) == 2
    assert [served.http.get(f"/v1/events/{i}").json()["data"]["id"] for i in body["ids"]] == [
        "a-1",
        "b-2",
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([{"name": "ok/one"}, {"name": ""}], "events[1].name"),
        ({"data": {}}, "event.name"),
        ({"name": "x/y", "data": [1, 2]}, "event.data"),
        ({"name": "stepline/internal"}, "event.name"),
        ({"name": "x/y", "ts": 5}, "event.ts"),
        ({"name": "x/y", "color": "red"}, "event"),
        ({"name": "x/y", "v": {}}, "event.v"),
        ({"name": "x/y", "ts": True}, "event.ts"),
        ({"name": "x/y", "ts": 1.5e12 + 0.5}, "event.ts"),
        ([{"name": "x/y"}, {"name": "x/y", "v": 2}], "events[1].v"),
        ("just a string", "event"),
    ],
)
def test_bad_events_are_rejected_with_the_field_and_nothing_is_stored(
    served: Served, store: Store, payload: Any, field: str
) -> None:
    response = served.http.post("/e/k", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and body["ids"] == [] and body["status"] == 400
    assert _events(store) == 0


def test_an_empty_list_of_events_is_accepted_and_stores_nothing(
    served: Served, store: Store
) -> None:
    response = served.http.post("/e/k", json=[])
    assert response.status_code == 200 and response.json() == {"ids": [], "status": 200}
    response = served.http.post("/v1/events", json=[])
    assert response.status_code == 200 and response.json() == {"data": {"ids": []}}
    assert _events(store) == 0


def test_event_ts_and_v_are_taken_as_the_schema_says(served: Served) -> None:
    ts = 1_750_000_000_000
    events = [{"name": "x/y", "ts": float(ts), "v": "2024-06-01"}, {"name": "x/y", "ts": 0}]
    ids = served.http.post("/e/k", json=events).json()["ids"]
    stored = [served.http.get(f"/v1/events/{i}").json()["data"]["ts"] for i in ids]
    assert stored[0] == ts and stored[1] > ts


def test_malformed_json_is_rejected(served: Served, store: Store) -> None:
    response = served.http.post(
        "/e/k", content=b'{"name": "x/y",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert _events(store) == 0


def test_oversized_body_is_rejected_with_413(served: Served, store: Store) -> None:
    big = json.dumps({"name": "x/y", "data": {"blob": "x" * (4 * 1024 * 1024)}})
    response = served.http.post("/e/k", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert _events(store) == 0


def test_oversized_event_is_rejected_with_413(served: Served, store: Store) -> None:
    """Stepline's API takes events up to 512 KiB; the intake up to 3 MiB, as Inngest does."""
    for path, size in (("/v1/events", 600_000), ("/e/k", 3 * 1024 * 1024)):
        response = served.http.post(path, json={"name": "x/y", "data": {"blob": "x" * size}})
        assert response.status_code == 413, path
        assert response.json()["field"] == "event.data", path
    assert _events(store) == 0


def test_unknown_ids_are_404(served: Served) -> None:
    for path in ("/v1/runs/nope", "/v1/events/nope", "/v1/events/nope/runs"):
        response = served.http.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["error"]
    assert served.http.post("/v1/runs/nope/cancel").status_code == 404
    assert served.http.post("/v1/runs/nope/replay").status_code == 404
    assert served.http.post("/v1/functions/nope/invoke", json={}).status_code == 404
    assert served.http.get("/v2/whatever").status_code == 404


def test_invoke_starts_a_manual_run_with_data(served: Served) -> None:
    response = served.http.post("/v1/functions/echo/invoke", json={"data": {"limit": 3}})
    assert response.status_code == 201
    run = _wait(served, response.json()["data"]["run_id"])
    assert run["trigger"]["kind"] == "manual"
    assert run["output"]["echo"]["limit"] == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": [1]}, "data"),
        ({"data": None}, "data"),
        ({"payload": {}}, "body"),
        ([1], "body"),
        (None, "body"),
        ("text", "body"),
        (7, "body"),
    ],
)
def test_invoke_rejects_bad_bodies(served: Served, body: Any, field: str) -> None:
    response = served.http.post(
        "/v1/functions/echo/invoke",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_invoke_without_a_body_runs_with_empty_data(served: Served) -> None:
    response = served.http.post("/v1/functions/echo/invoke")
    assert response.status_code == 201
    assert _wait(served, response.json()["data"]["run_id"])["output"] == {"echo": {}}


def test_cancel_and_replay(served: Served, store: Store) -> None:
    [event_id] = served.http.post("/e/k", json={"name": "test/nap"}).json()["ids"]
    [run] = served.http.get(f"/v1/events/{event_id}/runs").json()["data"]
    deadline = time.monotonic() + 10
    while served.http.get(f"/v1/runs/{run['id']}").json()["data"]["detail"] != "SLEEPING":
        assert time.monotonic() < deadline, "run never went to sleep"
        time.sleep(0.01)
    cancelled = served.http.post(f"/v1/runs/{run['id']}/cancel").json()["data"]
    assert cancelled["status"] == "CANCELLED"
    replay = served.http.post(f"/v1/runs/{run['id']}/replay")
    assert replay.status_code == 201
    new = served.http.get(f"/v1/runs/{replay.json()['data']['run_id']}").json()["data"]
    assert new["replay_of"] == run["id"] and new["trigger"]["kind"] == "replay"
    assert new["trigger"]["event_id"] == event_id


def test_list_runs_filters_and_validates(served: Served) -> None:
    ids = served.http.post("/e/k", json=[{"name": "test/echo"}, {"name": "test/echo"}]).json()[
        "ids"
    ]
    for event_id in ids:
        [run] = served.http.get(f"/v1/events/{event_id}/runs").json()["data"]
        _wait(served, run["id"])
    runs = served.http.get("/v1/runs", params={"function_id": "echo", "status": "COMPLETED"})
    assert len(runs.json()["data"]) == 2
    first = served.http.get("/v1/runs", params={"limit": 1}).json()["data"]
    rest = served.http.get("/v1/runs", params={"before": first[0]["id"]}).json()["data"]
    assert first[0]["id"] not in [r["id"] for r in rest] and len(rest) == 1
    for params, field in (
        ({"status": "DONE"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "5.0"}, "limit"),
        ({"limit": " 5"}, "limit"),
        ({"colour": "red"}, "colour"),
    ):
        response = served.http.get("/v1/runs", params=params)
        assert response.status_code == 400
        assert response.json()["field"] == field


def test_functions_and_health(served: Served) -> None:
    assert served.http.get("/health").json() == {"status": 200, "message": "OK"}
    functions = {f["id"]: f for f in served.http.get("/v1/functions").json()["data"]}
    assert functions["echo"]["triggers"] == [{"event": "test/echo"}]
    assert functions["echo"]["retries"] == 1


def test_keys_and_tokens_are_required_when_configured(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], store: Store
) -> None:
    served = serve(make_engine(_app()), AuthSettings(event_keys=("sekret",), api_token="tok"))
    refused = served.http.post("/e/wrong", json={"name": "test/echo"})
    assert refused.status_code == 401 and _events(store) == 0
    assert served.http.post("/e/sekret", json={"name": "test/echo"}).status_code == 200
    assert served.http.get("/v1/runs").status_code == 401
    assert served.http.get("/v1/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = served.http.get("/v1/runs", headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200
    assert served.http.get("/health").status_code == 200


def test_the_event_key_is_checked_for_small_and_large_bodies_alike(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], store: Store
) -> None:
    """A small body is read before its key is checked (one trip to the thread pool), a large
    one after; either way a wrong key stores nothing and a right one stores the event."""
    served = serve(make_engine(_app()), AuthSettings(event_keys=("sekret",)))
    small = {"name": "test/echo"}
    large = {"name": "test/echo", "data": {"blob": "x" * 100_000}}
    for body in (small, large):
        assert served.http.post("/e/wrong", json=body).status_code == 401
        assert served.http.post("/e/sekret", json=body).status_code == 200
    assert _events(store) == 2


# -- REST API v1: listing, search, bulk actions, pause, streams -------------------------------


def _started(served: Served, event_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = served.http.get(f"/v1/events/{event_id}/runs").json()["data"]
    return runs


def _ghost_runs(store: Store, clock: FakeClock, count: int) -> list[str]:
    """Runs of a function no worker serves: they stay QUEUED. Every third shares a time."""
    ids = []
    for i in range(count):
        if i % 3 == 0:
            clock.advance(timedelta(seconds=1))
        run = NewRun(id=new_id(), function_id="ghost", trigger_kind="manual")
        ids.append(store.create_run(run, [], clock.now(), Routing()))
    return ids


def test_cursor_pages_through_120_runs_with_no_duplicates_or_gaps(
    served: Served, store: Store, clock: FakeClock
) -> None:
    created = _ghost_runs(store, clock, 120)
    expected = [r.id for r in store.list_runs(RunFilter(function_id="ghost", limit=500))]
    assert sorted(expected) == sorted(created)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"function_id": "ghost", "limit": 7}
        if cursor is not None:
            params["before"] = cursor
        body = served.http.get("/v1/runs", params=params).json()
        seen += [run["id"] for run in body["data"]]
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == expected, "newest first by (created_at, id), each run exactly once"
    assert pages == 18  # 17 full pages of 7, then 1


def test_an_unknown_cursor_is_404_and_an_empty_one_is_the_first_page(served: Served) -> None:
    response = served.http.get("/v1/runs", params={"before": "01NOPE"})
    assert response.status_code == 404
    assert response.json()["error"] == "before: no run '01NOPE' to page from"
    assert served.http.get("/v1/runs/stream", params={"before": "01NOPE"}).status_code == 404
    [event_id] = served.http.post("/e/k", json={"name": "test/echo"}).json()["ids"]
    [run] = _started(served, event_id)
    for path in ("/v1/runs", "/v1/events"):
        first = served.http.get(path, params={"before": ""})
        assert first.status_code == 200 and len(first.json()["data"]) == 1, path
    assert served.http.get("/v1/runs", params={"before": ""}).json()["data"][0]["id"] == run["id"]


def test_created_window_filters_runs(served: Served, store: Store, clock: FakeClock) -> None:
    t0 = clock.now()
    early = _ghost_runs(store, clock, 3)  # at t0+1s
    clock.advance(timedelta(hours=1))
    late = _ghost_runs(store, clock, 3)  # at t0+1h+1s
    window = {"created_after": _rfc3339(t0), "created_before": _rfc3339(t0 + timedelta(hours=1))}
    found = served.http.get("/v1/runs", params=window).json()["data"]
    assert sorted(r["id"] for r in found) == sorted(early)
    after = served.http.get("/v1/runs", params={"created_after": _rfc3339(t0 + timedelta(hours=1))})
    assert sorted(r["id"] for r in after.json()["data"]) == sorted(late)
    not_rfc3339 = ("yesterday", "2026-01-01T00:00:00", "0.5", "1767225600", "2026-01-01 00:00Z")
    for value in (*not_rfc3339, "2026-02-30T00:00:00Z"):
        response = served.http.get("/v1/runs", params={"created_after": value})
        assert response.status_code == 400, value
        assert response.json()["field"] == "created_after"
    for value in ("0001-01-01T00:00:00+14:00", "1969-07-20T20:17:40Z", "1970-01-01t00:00:00z"):
        response = served.http.get("/v1/runs", params={"created_after": value})
        assert response.status_code == 200, value
        assert len(response.json()["data"]) == 6, value
        response = served.http.get("/v1/runs", params={"created_before": value})
        assert response.status_code == 200 and response.json()["data"] == [], value


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_q_finds_runs_by_text_inside_their_event_data(served: Served) -> None:
    [wanted] = served.http.post(
        "/e/k", json={"name": "test/other", "data": {"customer": "Zoë O'Brien", "ref": "A-1%_x"}}
    ).json()["ids"]
    [other] = served.http.post(
        "/e/k", json={"name": "test/other", "data": {"customer": "Bob", "ref": "A-10xx"}}
    ).json()["ids"]
    for event_id in (wanted, other):
        served.engine.store.create_run(
            NewRun(id=new_id(), function_id="ghost", trigger_kind="event", event_ids=(event_id,)),
            [],
            served.engine.clock.now(),
            Routing(),
        )

    def found(q: str) -> list[str | None]:
        runs = served.http.get("/v1/runs", params={"q": q}).json()["data"]
        return [run["trigger"]["event_id"] for run in runs]

    assert found("zoë o'brien") == [wanted], "case-insensitive, non-ASCII as stored"
    assert found("1%_x") == [wanted], "% and _ are literal, not wildcards"
    assert found("A-1") == [other, wanted]
    assert found("%") == [wanted]
    assert found("_") == [wanted]
    assert found("nobody") == []
    assert served.http.get("/v1/runs", params={"q": "x" * 201}).json()["field"] == "q"


def _sleeping(served: Served, count: int) -> list[str]:
    ids = served.http.post("/e/k", json=[{"name": "test/nap"}] * count).json()["ids"]
    runs = [run["id"] for event_id in ids for run in _started(served, event_id)]
    deadline = time.monotonic() + 10
    for run_id in runs:
        while served.engine.store.get_run(run_id).detail != "SLEEPING":
            assert time.monotonic() < deadline, "run never went to sleep"
            time.sleep(0.01)
    return runs


def test_bulk_cancel_by_filter_cancels_the_matching_active_runs(served: Served) -> None:
    napping = _sleeping(served, 3)
    [echo_event] = served.http.post("/e/k", json={"name": "test/echo"}).json()["ids"]
    [echo_run] = _started(served, echo_event)
    _wait(served, echo_run["id"])

    response = served.http.post("/v1/runs/cancel", json={"function_id": "napper"})
    assert response.status_code == 200
    assert response.json() == {"data": {"affected": 3}}
    for run_id in napping:
        assert served.engine.store.get_run(run_id).status == "CANCELLED"
    assert served.engine.store.get_run(echo_run["id"]).status == "COMPLETED"
    again = served.http.post("/v1/runs/cancel", json={"function_id": "napper"})
    assert again.json() == {"data": {"affected": 0}}, "ended runs are not cancelled twice"


def test_bulk_replay_by_filter_starts_one_linked_run_per_match(served: Served) -> None:
    ids = served.http.post("/e/k", json=[{"name": "test/echo", "data": {"n": i}} for i in range(3)])
    originals = [run["id"] for e in ids.json()["ids"] for run in _started(served, e)]
    for run_id in originals:
        _wait(served, run_id)
    response = served.http.post(
        "/v1/runs/replay", json={"function_id": "echo", "status": "COMPLETED"}
    )
    assert response.status_code == 201
    assert response.json() == {"data": {"affected": 3}}
    replays = served.http.get("/v1/runs", params={"trigger_kind": "replay"}).json()["data"]
    assert sorted(r["replay_of"] for r in replays) == sorted(originals)
    for run in replays:
        assert _wait(served, run["id"])["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"q": None}, "q"),
        ({"function_id": "echo", "status": None}, "status"),
        ({"colour": "red"}, "body"),
        ({"status": "DONE"}, "status"),
        ({"created_after": "soon"}, "created_after"),
        ({"created_after": 1767225600}, "created_after"),
        ([1], "body"),
        (None, "body"),
        ("function_id=echo", "body"),
        (1, "body"),
    ],
)
def test_bulk_actions_need_a_valid_filter(served: Served, body: Any, field: str) -> None:
    for action in ("cancel", "replay"):
        response = served.http.post(
            f"/v1/runs/{action}",
            content=json.dumps(body),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, (action, body)
        assert response.json()["field"] == field
        assert response.json()["status"] == 400


def test_bulk_actions_refuse_more_than_the_cap_and_do_nothing(
    served: Served, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "MAX_BULK_RUNS", 5)
    _ghost_runs(store, clock, 6)
    for action in ("cancel", "replay"):
        response = served.http.post(f"/v1/runs/{action}", json={"function_id": "ghost"})
        assert response.status_code == 400
        assert "more than 5 runs" in response.json()["error"]
    assert {r.status for r in store.list_runs(RunFilter(function_id="ghost"))} == {"QUEUED"}
    assert len(store.list_runs(RunFilter(limit=100))) == 6


def test_pause_stops_event_runs_and_resume_restores_them(served: Served) -> None:
    paused = served.http.post("/v1/functions/echo/pause")
    assert paused.status_code == 200 and paused.json()["data"]["paused"] is True
    [ignored] = served.http.post("/e/k", json={"name": "test/echo"}).json()["ids"]
    assert _started(served, ignored) == []
    invoked = served.http.post("/v1/functions/echo/invoke", json={})
    assert invoked.status_code == 409 and "paused" in invoked.json()["error"]

    resumed = served.http.post("/v1/functions/echo/resume")
    assert resumed.json()["data"]["paused"] is False
    [event_id] = served.http.post("/e/k", json={"name": "test/echo"}).json()["ids"]
    [run] = _started(served, event_id)
    assert _wait(served, run["id"])["status"] == "COMPLETED"

    served.http.post("/v1/functions/echo/pause")
    replay = served.http.post(f"/v1/runs/{run['id']}/replay")
    assert replay.status_code == 409
    bulk = served.http.post("/v1/runs/replay", json={"function_id": "echo"})
    assert bulk.status_code == 409
    assert served.http.post("/v1/functions/nope/pause").status_code == 404
    assert served.http.post("/v1/functions/nope/resume").status_code == 404


def test_a_paused_functions_cron_ticks_start_no_runs(store: Store, clock: FakeClock) -> None:
    fn = FunctionRecord(id="nightly", app_id="a", name="nightly", config='{"triggers": []}')
    store.sync_functions("a", [fn], clock.now())
    tick = clock.now() + timedelta(minutes=1)

    def run() -> NewRun:
        return NewRun(id=new_id(), function_id="nightly", trigger_kind="cron")

    store.set_function_paused("nightly", True)
    assert store.fire_cron_tick("nightly", "* * * * *", tick, run(), clock.now())
    assert store.list_runs(RunFilter(function_id="nightly")) == []
    assert store.cron_last_tick("nightly", "* * * * *") == tick, "the tick passed, skipped"
    store.set_function_paused("nightly", False)
    later = tick + timedelta(minutes=1)
    assert store.fire_cron_tick(
        "nightly", "* * * * *", later, run(), clock.now(), routing=Routing()
    )
    assert len(store.list_runs(RunFilter(function_id="nightly"))) == 1


def _cron_app() -> stepline.App:
    app = _app()

    @app.function(id="nightly", triggers=[stepline.cron("0 0 * * *", tz="Africa/Johannesburg")])
    def nightly(ctx: Any) -> None:
        return None

    return app


def test_functions_show_next_tick_last_run_and_success_rate(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], clock: FakeClock
) -> None:
    served = serve(make_engine(_cron_app()))
    ids = served.http.post("/e/k", json=[{"name": "test/echo"}] * 3).json()["ids"]
    echo_runs = [run["id"] for e in ids for run in _started(served, e)]
    for run_id in echo_runs:
        _wait(served, run_id)
    [nap] = _sleeping(served, 1)
    served.http.post(f"/v1/runs/{nap}/cancel")

    functions = {f["id"]: f for f in served.http.get("/v1/functions").json()["data"]}
    echo, napper, nightly = functions["echo"], functions["napper"], functions["nightly"]
    assert echo["success_rate_24h"] == 1.0 and echo["ended_24h"] == {"COMPLETED": 3}
    assert echo["last_run"]["id"] == max(echo_runs, key=lambda r: (r[:10], r))
    assert napper["success_rate_24h"] == 0.0 and napper["ended_24h"] == {"CANCELLED": 1}
    assert napper["last_run"] == {
        "id": nap,
        "status": "CANCELLED",
        "created_at": served.http.get(f"/v1/runs/{nap}").json()["data"]["created_at"],
    }
    assert nightly["success_rate_24h"] is None and nightly["last_run"] is None
    [trigger] = nightly["triggers"]
    fire = datetime.fromisoformat(trigger["next_fire_at"])
    assert trigger["next_fire_at"].endswith("+02:00"), "in the trigger's zone"
    assert (fire.hour, fire.minute) == (0, 0) and fire > clock.now()
    assert fire - clock.now() <= timedelta(days=1)
    assert trigger["missed_fires"] == 0
    clock.advance(timedelta(days=2))
    echo = served.http.get("/v1/functions/echo").json()["data"]
    assert echo["success_rate_24h"] is None, "nothing ended in the last 24 h"
    assert echo["last_run"] is not None


def test_functions_show_their_options_as_registered_and_in_words(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(options_app()))

    listed = served.http.get("/v1/functions").json()
    models.FunctionList.model_validate(listed)
    functions = {f["id"]: f for f in listed["data"]}
    assert {fn: f["option_summaries"] for fn, f in functions.items()} == OPTION_SUMMARIES
    one = served.http.get("/v1/functions/sync-script").json()
    models.FunctionResponse.model_validate(one)
    assert one["data"]["options"] == {
        "concurrency": [{"limit": 2, "key": "event.data.customer", "scope": "function"}],
        "throttle": {"limit": 10, "period_seconds": 60.0, "burst": 1, "key": None},
        "rate_limit": {"limit": 1, "period_seconds": 3600.0, "key": "event.data.customer"},
        "debounce": {"period_seconds": 30.0, "key": "event.data.sku", "timeout_seconds": 300.0},
        "priority": {"run": "event.data.plan == 'enterprise' ? 120 : 0"},
        "idempotency": "event.data.order_id",
        "singleton": {"key": "event.data.script", "mode": "skip"},
        "cancel_on": [
            {
                "event": "sync/cancelled",
                "if": "event.data.id == async.data.id",
                "timeout_seconds": 86400.0,
            }
        ],
        "start_timeout_seconds": 300.0,
        "on_failure": "sync-script-failure",
    }
    assert one["data"]["timeout_seconds"] == 3600.0
    assert functions["batched"]["options"] == {
        "batch_events": {"max_size": 100, "timeout_seconds": 5.0, "key": "event.data.warehouse"}
    }
    assert functions["sync-script-failure"]["options"] == {}


def test_events_are_listed_by_name_and_time_and_paged(served: Served, clock: FakeClock) -> None:
    t0 = clock.now()
    served.http.post("/e/k", json=[{"name": "test/a"}, {"name": "test/b"}])
    clock.advance(timedelta(minutes=5))
    [late] = served.http.post("/e/k", json={"name": "test/a"}).json()["ids"]
    named = served.http.get("/v1/events", params={"name": "test/a"}).json()
    assert [e["name"] for e in named["data"]] == ["test/a", "test/a"]
    assert named["next_cursor"] is None
    recent = served.http.get(
        "/v1/events", params={"received_after": _rfc3339(t0 + timedelta(minutes=1))}
    ).json()["data"]
    assert [e["internal_id"] for e in recent] == [late]
    old = served.http.get(
        "/v1/events", params={"received_before": _rfc3339(t0 + timedelta(minutes=1))}
    ).json()["data"]
    assert sorted(e["name"] for e in old) == ["test/a", "test/b"]
    started = served.http.get("/v1/events", params={"name_prefix": "test/"}).json()["data"]
    assert len(started) == 3
    assert served.http.get("/v1/events", params={"name_prefix": "test/b"}).json()["data"] == [
        e for e in started if e["name"] == "test/b"
    ]
    assert served.http.get("/v1/events", params={"name_prefix": "TEST/"}).json()["data"] == []
    first = served.http.get("/v1/events", params={"limit": 2}).json()
    rest = served.http.get("/v1/events", params={"before": first["next_cursor"]}).json()
    assert len(first["data"]) == 2 and len(rest["data"]) == 1 and rest["next_cursor"] is None
    for value in ("x", "0.5", "1767225600"):
        response = served.http.get("/v1/events", params={"received_before": value})
        assert response.status_code == 400 and response.json()["field"] == "received_before"
    assert served.http.get("/v1/events", params={"nam": "x"}).json()["field"] == "nam"


def test_send_events_over_the_api(served: Served) -> None:
    response = served.http.post("/v1/events", json={"name": "test/echo", "data": {"x": 2}})
    assert response.status_code == 200
    [event_id] = response.json()["data"]["ids"]
    [run] = _started(served, event_id)
    assert _wait(served, run["id"])["output"] == {"echo": {"x": 2}}
    bad = served.http.post("/v1/events", json={"name": "a\u0000b"})
    assert bad.status_code == 400 and bad.json()["field"] == "event.name"
    surrogate = b'{"name": "a\\ud800"}'
    bad = served.http.post(
        "/v1/events", content=surrogate, headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "event.name"


def test_oversized_api_bodies_are_rejected_with_413(served: Served) -> None:
    big = json.dumps({"data": {"blob": "x" * (4 * 1024 * 1024)}})
    headers = {"content-type": "application/json"}
    for path in ("/v1/events", "/v1/runs/cancel", "/v1/runs/replay", "/v1/functions/echo/invoke"):
        response = served.http.post(path, content=big, headers=headers)
        assert response.status_code == 413, path
        assert response.json() == {
            "error": f"body: request body is larger than {3 * 1024 * 1024} bytes",
            "status": 413,
            "field": "body",
        }


@pytest.mark.parametrize("body", [None, "text", 7, True])
def test_events_must_be_an_object_or_a_list(served: Served, store: Store, body: Any) -> None:
    headers = {"content-type": "application/json"}
    for path in ("/e/k", "/v1/events"):
        response = served.http.post(path, content=json.dumps(body), headers=headers)
        assert response.status_code == 400, path
        assert response.json()["field"] == "event"
        assert "must be a JSON object, not " in response.json()["error"]
    assert _events(store) == 0


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/runs/r1", "DELETE, GET, HEAD"),
        ("/v1/events", "GET, HEAD, POST"),
        ("/v1/runs/cancel", "POST"),
        ("/e/k", "POST"),
    ],
)
def test_a_method_not_allowed_is_405_with_the_allowed_methods(
    served: Served, path: str, allowed: str
) -> None:
    for method in ("PUT", "PATCH", "TRACE", "OPTIONS"):
        response = served.http.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.json()["status"] == 405


def test_nul_in_a_path_is_bad_input(served: Served) -> None:
    response = served.http.get("/v1/runs/a%00b")
    assert response.status_code == 400 and response.json()["field"] == "run_id"


def test_run_stream_sends_the_run_as_it_changes_then_end(served: Served) -> None:
    [run_id] = _sleeping(served, 1)
    events: list[tuple[str, str]] = []
    with served.http.stream("GET", f"/v1/runs/{run_id}/stream", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for event, data in sse_events(response.iter_lines()):
            events.append((event, data))
            if len(events) == 1:
                assert json.loads(data)["detail"] == "SLEEPING"
                served.http.post(f"/v1/runs/{run_id}/cancel")
            if event == "end":
                break
    assert [e for e, _ in events] == ["run", "run", "end"]
    assert json.loads(events[1][1])["status"] == "CANCELLED"
    assert served.http.get("/v1/runs/nope/stream").status_code == 404


def test_runs_stream_sends_the_page_when_it_changes(served: Served) -> None:
    with served.http.stream(
        "GET", "/v1/runs/stream", params={"function_id": "napper"}, timeout=10
    ) as response:
        pages = sse_events(response.iter_lines())
        event, data = next(pages)
        assert event == "runs" and json.loads(data) == {"data": [], "next_cursor": None}
        [event_id] = served.http.post("/e/k", json={"name": "test/nap"}).json()["ids"]
        event, data = next(pages)
        [run] = json.loads(data)["data"]
        assert event == "runs" and run["trigger"]["event_id"] == event_id
    assert served.http.get("/v1/runs/stream", params={"status": "x"}).status_code == 400


def test_every_api_route_needs_the_token_except_intake_and_the_schema(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(_app()), AuthSettings(api_token="tok"))
    for endpoint in API:
        path = endpoint.path.format(**{name: "x" for name in endpoint.path_params})
        response = served.http.request(endpoint.method, path)
        if endpoint.auth:
            assert response.status_code == 401, path
            assert response.json()["status"] == 401
        else:
            assert response.status_code != 401, path


def test_dashboard_shows_the_success_rate_pauses_and_filters_by_time_and_text(
    served: Served, clock: FakeClock
) -> None:
    [event_id] = served.http.post(
        "/e/k", json={"name": "test/echo", "data": {"k": "Needle"}}
    ).json()["ids"]
    [run] = _started(served, event_id)
    _wait(served, run["id"])
    functions = served.http.get("/functions").text
    assert "100% (1 of 1 ended)" in functions
    assert 'href="/functions/echo/pause"' in functions  # to the confirmation
    paused = served.http.post(
        "/functions/echo/pause",
        data={"confirmed": "true"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert paused.status_code == 303
    assert 'href="/functions/echo/resume"' in served.http.get("/functions").text
    found = served.http.get("/runs", params={"q": "needle"}).text
    assert run["id"] in found and 'value="needle"' in found
    later = _rfc3339(clock.now() + timedelta(seconds=1))
    assert run["id"] not in served.http.get("/runs", params={"created_after": later}).text
    assert served.http.get("/runs", params={"created_after": "soon"}).status_code == 400
