"""Rerun over HTTP: `POST /v1/runs/{id}/rerun` and `Client.rerun` start a linked run from a
step, with edited data; bad requests are refused naming the field (both stores)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.engine import Engine
from tests.cases.test_rerun import EVENT, pipeline_app
from tests.engine.support import start
from tests.server.conftest import Served


@pytest.mark.parametrize("via", ["client", "api"])
def test_rerun_from_a_step_with_edited_data_over_http(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], via: str
) -> None:
    calls: Counter[str] = Counter()
    served = serve(make_engine(pipeline_app(calls, set())))
    original = served.engine.wait_for_run(start(served.engine, EVENT, {"n": 1}), 10)
    if via == "client":
        with stepline.Client(served.url) as client:
            rerun_id = client.rerun(original.id, from_step="transform", data={"n": 7})
    else:
        response = served.http.post(
            f"/v1/runs/{original.id}/rerun", json={"from_step": "transform", "data": {"n": 7}}
        )
        assert response.status_code == 201, response.text
        rerun_id = response.json()["data"]["run_id"]

    served.engine.wait_for_run(rerun_id, 10)
    run = served.http.get(f"/v1/runs/{rerun_id}").json()["data"]

    assert run["status"] == "COMPLETED"
    assert run["trigger"]["kind"] == "rerun"
    assert run["replay_of"] == original.id
    assert json.loads(json.dumps(run["output"]))["loaded"] == "2 for 7"
    assert [step["id"] for step in run["steps"]] == ["fetch", "transform", "load"]
    assert calls["fetch"] == 1
    reruns = served.http.get("/v1/runs", params={"trigger_kind": "rerun"}).json()["data"]
    assert [r["id"] for r in reruns] == [rerun_id]


def test_a_rerun_without_a_body_starts_from_the_top_with_the_same_data(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    calls: Counter[str] = Counter()
    served = serve(make_engine(pipeline_app(calls, set())))
    original = served.engine.wait_for_run(start(served.engine, EVENT, {"n": 2}), 10)

    response = served.http.post(f"/v1/runs/{original.id}/rerun")

    assert response.status_code == 201, response.text
    rerun = served.engine.wait_for_run(response.json()["data"]["run_id"], 10)
    assert json.loads(rerun.output or "")["loaded"] == "4 for 2"
    assert calls == Counter({"fetch": 2, "transform": 2, "load": 2})


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"from_step": "nope"}, 400, "from_step", "its steps: 'fetch', 'transform', 'load'"),
        ({"data": [1, 2]}, 400, "data", "valid dictionary"),
        ({"dry_run": "yes"}, 400, "dry_run", "boolean"),
        ({"from": "load"}, 400, "body", "unknown field 'from'"),
        ({"data": {"blob": "x" * 600_000}}, 413, None, "data"),
    ],
    ids=["unknown-step", "data-not-object", "dry-run-not-bool", "unknown-field", "too-large"],
)
def test_bad_rerun_requests_are_refused_naming_the_field(
    make_engine: Callable[..., Engine],
    serve: Callable[..., Served],
    body: dict[str, object],
    status: int,
    field: str | None,
    words: str,
) -> None:
    served = serve(make_engine(pipeline_app(Counter(), set())))
    original = served.engine.wait_for_run(start(served.engine, EVENT, {"n": 1}), 10)

    response = served.http.post(f"/v1/runs/{original.id}/rerun", json=body)

    assert response.status_code == status, response.text
    error = response.json()
    assert words in error["error"]
    if field is not None:
        assert error["field"] == field
    runs = served.http.get("/v1/runs", params={"function_id": "sync"}).json()["data"]
    assert [r["id"] for r in runs] == [original.id], "nothing was started"


def test_rerun_of_an_unknown_run_is_404(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(pipeline_app(Counter(), set())))

    response = served.http.post("/v1/runs/01J0000000000000000000000X/rerun", json={})

    assert response.status_code == 404, response.text
