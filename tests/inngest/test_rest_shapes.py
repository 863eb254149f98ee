"""The routes Inngest's REST API shares with Stepline's, in each one's shape (protocol §11).

An Inngest client (the SDKs' headers, a signing key as bearer token, or `X-Stepline-Shape:
inngest`) gets Inngest's answers; every other client gets Stepline's, as before. The runs are
real runs of functions on the official Python SDK.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import inngest
import pytest
from pydantic import BaseModel

from stepline.engine.inngest.signing import SigningKeys, hashed_key
from stepline.server import models
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings
from stepline.server.inngest.rest import ENVIRONMENT_ID
from tests.inngest.conftest import Stepline
from tests.loopback import Servers

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]
PY = {"x-inngest-sdk": "inngest-py:v0.5.18", "user-agent": "inngest-py:v0.5.18"}
KEY = "signkey-test-" + "ab" * 32
TOKEN = "rest-shapes-token-0123456789"
UNKNOWN_RUN = "01HF7YAT00000G40R40M30E20A"


def _app(stepline: Stepline, py_app: Serve) -> None:
    """Sync "shapes-ok" (t/ok), "shapes-boom" (t/boom), "shapes-nap" (t/nap), "shapes-fan"."""
    client = stepline.client("shapes")

    @client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="t/ok"), retries=0)
    def ok(ctx: inngest.ContextSync) -> Any:
        return {"n": ctx.event.data["n"]}

    @client.create_function(fn_id="boom", trigger=inngest.TriggerEvent(event="t/boom"))
    def boom(ctx: inngest.ContextSync) -> None:
        raise inngest.NonRetriableError("no way")

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="t/nap"))
    def nap(ctx: inngest.ContextSync) -> None:
        ctx.step.sleep("nap", datetime.timedelta(hours=1))

    @client.create_function(fn_id="fan", trigger=inngest.TriggerEvent(event="t/fan"), retries=0)
    def fan(ctx: inngest.ContextSync) -> Any:
        return ctx.group.parallel(
            (lambda: ctx.step.run("a", lambda: "A"), lambda: ctx.step.run("b", lambda: "B"))
        )

    stepline.sync(py_app(client, [ok, boom, nap, fan]))


def _get(http: httpx.Client, path: str, model: type[BaseModel], **kwargs: Any) -> Any:
    """The answer's `data`, after checking the whole body against `model` (no extra keys)."""
    response = http.get(path, **kwargs)
    assert response.status_code == 200, response.text
    model.model_validate(response.json())
    return response.json()["data"]


def _sleeping(stepline: Stepline) -> str:
    """The id of a run of "shapes-nap", once it sleeps."""
    [run] = stepline.runs_of(stepline.send("t/nap"))
    deadline = time.monotonic() + 20
    while stepline.engine.get_run(run.id).run.detail != "SLEEPING":
        assert time.monotonic() < deadline, "the run never slept"
        time.sleep(0.05)
    return run.id


def test_inngest_clients_get_inngest_shapes_and_other_clients_stepline_shapes(
    stepline: Stepline, py_app: Serve
) -> None:
    _app(stepline, py_app)
    event_id = stepline.send("t/ok", {"n": 7})
    run = stepline.run_of(event_id)
    http = stepline.http

    [inngest_run] = _get(http, f"/v1/events/{event_id}/runs", models.InngestRuns, headers=PY)
    assert inngest_run == {
        "run_id": run.id,
        "run_started_at": inngest_run["run_started_at"],
        "function_id": "shapes-ok",
        "function_version": 1,
        "environment_id": ENVIRONMENT_ID,
        "event_id": event_id,
        "status": "Completed",
        "ended_at": inngest_run["ended_at"],
        "output": {"n": 7},
    }
    assert _get(http, f"/v1/runs/{run.id.lower()}", models.InngestRunResponse, headers=PY) == (
        inngest_run
    )
    event = _get(http, f"/v1/events/{event_id}", models.InngestEventResponse, headers=PY)
    assert {k: event[k] for k in ("internal_id", "id", "name", "data")} == {
        "internal_id": event_id,
        "id": event_id,
        "name": "t/ok",
        "data": {"n": 7},
    }
    [listed] = _get(http, "/v1/events", models.InngestEvents, params={"name": "t/ok"}, headers=PY)
    assert listed == event

    [own_run] = _get(http, f"/v1/events/{event_id}/runs", models.RunList)
    assert own_run["id"] == run.id and own_run["status"] == "COMPLETED"
    detail = _get(http, f"/v1/runs/{run.id}", models.RunDetailResponse)
    assert detail["status"] == "COMPLETED" and detail["output"] == {"n": 7}
    assert _get(http, f"/v1/events/{event_id}", models.EventResponse)["source"] == "api"
    page = http.get("/v1/events", params={"name": "t/ok"}).json()
    models.EventsPage.model_validate(page)


@pytest.mark.parametrize(
    ("headers", "inngest_shape"),
    [
        ({"user-agent": "inngest-js:v4.24.0"}, True),
        ({"x-inngest-sdk": "inngest-js:v3.54.2"}, True),
        ({"x-stepline-shape": "inngest"}, True),
        ({"authorization": f"Bearer {KEY}"}, True),  # Inngest's docs: the signing key
        ({**PY, "x-stepline-shape": "stepline"}, False),
        ({"user-agent": "python-httpx/0.28"}, False),
        ({"authorization": "Bearer undefined"}, False),
    ],
)
def test_who_gets_which_shape(
    stepline: Stepline, py_app: Serve, headers: dict[str, str], inngest_shape: bool
) -> None:
    _app(stepline, py_app)
    run = stepline.run_of(stepline.send("t/ok", {"n": 1}))
    body = stepline.http.get(f"/v1/runs/{run.id}", headers=headers).json()
    model = models.InngestRunResponse if inngest_shape else models.RunDetailResponse
    model.model_validate(body)


def test_a_failed_runs_output_is_its_error_and_parallel_branches_are_not_runs(
    stepline: Stepline, py_app: Serve
) -> None:
    _app(stepline, py_app)
    event_id = stepline.send("t/boom")
    run = stepline.run_of(event_id)
    [failed] = _get(stepline.http, f"/v1/events/{event_id}/runs", models.InngestRuns, headers=PY)
    assert failed["status"] == "Failed" and failed["ended_at"] is not None
    assert failed["output"]["name"] == "NonRetriableError"
    assert failed["output"]["message"] == "no way"
    own = _get(stepline.http, f"/v1/runs/{run.id}", models.RunDetailResponse)
    assert own["output"] is None and own["error"]["message"] == "no way"

    fanned = stepline.send("t/fan")
    run = stepline.ended(stepline.runs_of(fanned)[0].id)
    assert run.status == "COMPLETED", run.error
    [whole] = _get(stepline.http, f"/v1/events/{fanned}/runs", models.InngestRuns, headers=PY)
    assert whole["run_id"] == run.id and whole["output"] == ["A", "B"]
    kinds = [
        r["trigger"]["kind"]
        for r in _get(stepline.http, f"/v1/events/{fanned}/runs", models.RunList)
    ]
    assert sorted(kinds) == ["event", "parallel", "parallel"]


def test_delete_cancels_with_an_empty_answer_for_inngest_and_the_run_for_stepline(
    stepline: Stepline, py_app: Serve
) -> None:
    _app(stepline, py_app)
    http = stepline.http
    run_id = _sleeping(stepline)
    running = _get(http, f"/v1/runs/{run_id}", models.InngestRunResponse, headers=PY)
    assert running["status"] == "Running" and "output" not in running

    cancelled = http.delete(f"/v1/runs/{run_id}", headers=PY)
    assert cancelled.status_code == 200 and cancelled.content == b""
    assert stepline.engine.get_run(run_id).run.status == "CANCELLED"
    assert _get(http, f"/v1/runs/{run_id}", models.InngestRunResponse, headers=PY)["status"] == (
        "Cancelled"
    )
    assert http.delete(f"/v1/runs/{UNKNOWN_RUN}", headers=PY).status_code == 404
    not_ulid = http.delete("/v1/runs/nope", headers=PY)
    assert not_ulid.status_code == 400 and not_ulid.json()["field"] == "run_id"
    assert http.get("/v1/runs/nope", headers=PY).status_code == 400
    assert http.get("/v1/runs/nope").status_code == 404  # Stepline's answer is unchanged

    other = _sleeping(stepline)
    own = http.delete(f"/v1/runs/{other}")
    assert own.status_code == 200
    models.RunResponse.model_validate(own.json())
    assert own.json()["data"]["status"] == "CANCELLED"


def test_the_legacy_cancel(stepline: Stepline, py_app: Serve) -> None:
    _app(stepline, py_app)
    http = stepline.http
    run_id = _sleeping(stepline)
    response = http.delete(f"/v0/runs/{run_id}")
    assert response.status_code == 204 and response.content == b""
    assert stepline.engine.get_run(run_id).run.status == "CANCELLED"
    assert http.delete(f"/v0/runs/{run_id}").status_code == 204  # cancelled already: fine
    completed = stepline.run_of(stepline.send("t/ok", {"n": 1}))
    refused = http.delete(f"/v0/runs/{completed.id}")
    assert refused.status_code == 409 and refused.json()["status"] == 409
    assert http.delete(f"/v0/runs/{UNKNOWN_RUN}").status_code == 404
    assert http.delete("/v0/runs/nope").status_code == 400


def test_event_pages_names_and_cursors(stepline: Stepline, py_app: Serve) -> None:
    _app(stepline, py_app)
    http = stepline.http
    ids = {stepline.send("t/many", {"i": i}) for i in range(25)}
    everything = http.get("/v1/events", params={"name": "t/many"}).json()["data"]
    newest_first = [e["internal_id"] for e in everything]  # Stepline's page: up to 50
    assert set(newest_first) == ids and newest_first == sorted(ids, reverse=True)

    first = _get(http, "/v1/events", models.InngestEvents, params={"name": "t/many"}, headers=PY)
    assert [e["internal_id"] for e in first] == newest_first[:20]  # Inngest's default page
    rest = _get(
        http,
        "/v1/events",
        models.InngestEvents,
        params={"name": "t/many", "cursor": first[-1]["internal_id"]},
        headers=PY,
    )
    assert [e["internal_id"] for e in rest] == newest_first[20:]
    own = http.get("/v1/events", params={"name": "t/many", "limit": 10, "cursor": newest_first[4]})
    assert [e["internal_id"] for e in own.json()["data"]] == newest_first[5:15]
    both = http.get("/v1/events", params={"cursor": newest_first[1], "before": newest_first[1]})
    assert both.status_code == 400 and both.json()["field"] == "query"

    watcher = stepline.client("watcher")

    @watcher.create_function(
        fn_id="watch", trigger=inngest.TriggerEvent(event="inngest/function.finished")
    )
    def watch(ctx: inngest.ContextSync) -> Any:
        return ctx.event.data["run_id"]

    stepline.sync(py_app(watcher, [watch]))
    run = stepline.run_of(stepline.send("t/ok", {"n": 1}))
    stored = http.get("/v1/events", params={"name": "stepline/function.finished"}).json()["data"]
    assert [e["data"]["run_id"] for e in stored] == [run.id]
    watched = stepline.run_of(stored[0]["internal_id"])  # a watcher's run announces nothing
    assert json.loads(watched.output or "null") == run.id
    finished = _get(
        http,
        "/v1/events",
        models.InngestEvents,
        params={"name": "inngest/function.finished"},
        headers=PY,
    )
    assert [(e["internal_id"], e["name"]) for e in finished] == [
        (stored[0]["internal_id"], "inngest/function.finished")
    ]


def test_a_signing_key_opens_the_shared_routes_alone(
    stepline: Stepline, py_app: Serve, servers: Servers
) -> None:
    _app(stepline, py_app)
    run = stepline.run_of(stepline.send("t/ok", {"n": 3}))
    auth = AuthSettings(api_token=TOKEN, signing_keys=SigningKeys(KEY))
    url = servers.start(create_app(stepline.engine.operations, auth))
    path = f"/v1/runs/{run.id}"
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.get(path).status_code == 401
        assert http.get(path, headers={"authorization": f"Bearer {KEY[:-2]}00"}).status_code == 401
        by_token = http.get(path, headers={"authorization": f"Bearer {TOKEN}"})
        models.RunDetailResponse.model_validate(by_token.json())
        for token in (KEY, hashed_key(KEY)):  # js sends the key, py its hash
            answer = http.get(path, headers={"authorization": f"Bearer {token}"})
            models.InngestRunResponse.model_validate(answer.json())
            cancel = http.delete(path, headers={"authorization": f"Bearer {token}"})
            assert cancel.status_code == 200 and cancel.content == b""
        assert http.get("/v1/runs", headers={"authorization": f"Bearer {KEY}"}).status_code == 401
