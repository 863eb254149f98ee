"""The HTTP surface: Inngest-shaped intake and REST v1, with each kind of bad input rejected."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from stepline.store.base import Store
from tests.server.conftest import Served


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
        ([], "events"),
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
    response = served.http.post("/e/k", json={"name": "x/y", "data": {"blob": "x" * 600_000}})
    assert response.status_code == 413
    assert response.json()["field"] == "event.data"
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
    [({"data": [1]}, "data"), ({"payload": {}}, "body"), ([1], "body")],
)
def test_invoke_rejects_bad_bodies(served: Served, body: Any, field: str) -> None:
    response = served.http.post("/v1/functions/echo/invoke", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == field


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
