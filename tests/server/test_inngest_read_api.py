"""What the Inngest SDKs and inngest-py's test helper read runs through: /v0/gql, /v0/runs, /dev.

Runs are made by the real engine (the in-process driver stores steps as the SDK driver does)
and read over real HTTP with the four GraphQL documents of inngest-py's test helper (protocol
§12), the SDK's own event model and its client's `use_api` calls (§7.3).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from importlib import metadata
from typing import Any

import inngest
import pytest
from inngest.experimental.dev_server import dev_server

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.events import new_id
from stepline.engine.inngest.signing import SigningKeys
from stepline.server.auth import AuthSettings
from stepline.store.base import RunFilter, RunRecord
from tests.server.conftest import Served

# The documents inngest-py's test helper (pkg/test_core/test_core/helper.py) sends.
GET_STEPS = """
query GetHistory($run_id: String!) {
    run(runID: $run_id) {
        trace {
            childrenSpans {
                name
                outputID
            }
        }
    }
}
"""
GET_STEP_OUTPUT = """
query GetHistory($output_id: String!) {
    runTraceSpanOutputByID(outputID: $output_id) {
        data
        error {
            message
            name
            stack
        }
    }
}
"""
GET_RUNS_OF_EVENT = """
query GetRunFromEventID($event_id: ID!) {
    event(query: {eventId: $event_id}) {
        functionRuns {
            id
        }
    }
}
"""
GET_RUN = """
query GetRun($run_id: String!) {
    run(runID: $run_id) {
        output
        status
    }
    runTrigger(runID: $run_id) {
        payloads
    }
}
"""
FIRST = [{"empty": None, "foo": {"bar": 1}}]


class MyError(Exception):
    pass


def _boom() -> None:
    raise MyError("oh no")


def _app() -> stepline.App:
    app = stepline.App("inngest-read")

    @app.function(id="steps", triggers=[stepline.event("read/steps")], retries=0)
    def steps(ctx: stepline.Context) -> dict[str, Any]:
        ctx.step.run("add", lambda: FIRST)
        again = ctx.step.run("add", lambda: 0)
        caught = None
        try:
            ctx.step.run("fails", _boom)
        except stepline.StepError as exc:
            caught = exc.error_message
        ctx.step.sleep("nap", "1s")
        return {"again": again, "caught": caught}

    @app.function(id="dies", triggers=[stepline.event("read/dies")], retries=0)
    def dies(ctx: stepline.Context) -> None:
        raise MyError("the end")

    @app.function(id="napper", triggers=[stepline.event("read/nap")], retries=0)
    def napper(ctx: stepline.Context) -> str:
        ctx.step.run("before", lambda: "awake")
        ctx.step.sleep("long-nap", "1h")
        return "rested"

    @app.function(id="fanout", triggers=[stepline.event("read/fanout")], retries=0)
    def fanout(ctx: stepline.Context) -> list[str]:
        return ctx.step.parallel(
            "group",
            [lambda: ctx.step.run("left", lambda: "L"), lambda: ctx.step.run("right", lambda: "R")],
        )

    return app


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(_app())


@pytest.fixture
def served(engine: Engine, serve: Callable[..., Served]) -> Served:
    return serve(engine)


@pytest.fixture
def sdk_client(served: Served) -> Iterator[inngest.Inngest]:
    """The SDK's client in dev mode, its API at the served Stepline; its connections closed."""
    client = inngest.Inngest(app_id="reader", api_base_url=served.url, is_production=False)
    yield client
    client._http_client._http_client_sync.close()


def _start(served: Served, name: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
    """Send one event; its id and the id of the run it started (not a branch run of that)."""
    [event_id] = served.http.post("/e/key", json={"name": name, "data": data or {}}).json()["ids"]
    started = RunFilter(event_id=event_id, trigger_kind="event")
    deadline = time.monotonic() + 10
    while not (runs := served.engine.operations.store.list_runs(started)):
        assert time.monotonic() < deadline, f"no run for {name}"
        time.sleep(0.02)
    return event_id, runs[0].id


def _finish(served: Served, clock: FakeClock, run_id: str) -> RunRecord:
    """Wait for the run to end, moving the fake clock past its short sleeps."""
    deadline = time.monotonic() + 15
    while not (run := served.engine.operations.store.get_run(run_id)).ended:
        assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
        clock.advance(timedelta(seconds=1))
        time.sleep(0.05)
    return run


def _gql(served: Served, document: str, **variables: Any) -> dict[str, Any]:
    """The GraphQL answer, checked as the helper's client checks it (200, `data` an object)."""
    response = served.http.post("/v0/gql", json={"query": document, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) <= {"data", "errors"}
    return body


def _data(served: Served, document: str, **variables: Any) -> dict[str, Any]:
    body = _gql(served, document, **variables)
    assert "errors" not in body, body
    assert isinstance(body["data"], dict)
    return body["data"]


def _spans(served: Served, run_id: str) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = _data(served, GET_STEPS, run_id=run_id)["run"]["trace"][
        "childrenSpans"
    ]
    return spans


def _outputs(served: Served, run_id: str) -> dict[str, dict[str, Any]]:
    """Each finished span's output by name, as the helper's `get_step_output` reads it."""
    found = {}
    for span in _spans(served, run_id):
        if span["outputID"] is not None:
            output = _data(served, GET_STEP_OUTPUT, output_id=span["outputID"])
            found[span["name"]] = output["runTraceSpanOutputByID"]
    return found


def _sha1(step_id: str) -> str:
    return hashlib.sha1(step_id.encode()).hexdigest()


# -- GraphQL ------------------------------------------------------------------------------


def test_a_completed_run_reads_as_the_helper_expects(served: Served, clock: FakeClock) -> None:
    event_id, run_id = _start(served, "read/steps", {"x": 1})
    _finish(served, clock, run_id)
    data = _data(served, GET_RUN, run_id=run_id)
    assert data["run"]["status"] == "COMPLETED"
    assert json.loads(data["run"]["output"]) == {"again": 0, "caught": "oh no"}
    [payload] = data["runTrigger"]["payloads"]
    event = inngest.Event.model_validate_json(payload)  # the helper's strict model
    assert (event.name, event.data, event.id) == ("read/steps", {"x": 1}, event_id)
    assert isinstance(json.loads(payload)["ts"], int)

    spans = _spans(served, run_id)
    assert [s["name"] for s in spans] == ["add", "add:1", "fails", "nap"]
    assert len({s["outputID"] for s in spans}) == 4
    outputs = _outputs(served, run_id)
    assert outputs["add"] == {"data": json.dumps(FIRST, separators=(",", ":")), "error": None}
    assert json.loads(outputs["add"]["data"]) == FIRST
    assert outputs["add:1"] == {"data": "0", "error": None}
    failed = outputs["fails"]
    assert failed["data"] is None
    assert failed["error"]["name"] == "MyError" and failed["error"]["message"] == "oh no"
    assert "Traceback" in failed["error"]["stack"] and "_boom" in failed["error"]["stack"]
    assert outputs["nap"]["error"] is None


def test_the_runs_own_output_is_a_span_output_too(served: Served, clock: FakeClock) -> None:
    _, run_id = _start(served, "read/steps")
    _finish(served, clock, run_id)
    trace = _data(
        served, "query($id: String!) { run(runID: $id) { trace { outputID } } }", id=run_id
    )
    output_id = trace["run"]["trace"]["outputID"]
    output = _data(served, GET_STEP_OUTPUT, output_id=output_id)["runTraceSpanOutputByID"]
    assert json.loads(output["data"]) == {"again": 0, "caught": "oh no"}
    assert output["error"] is None


def test_a_failed_run_outputs_its_error(served: Served, clock: FakeClock) -> None:
    _, run_id = _start(served, "read/dies")
    _finish(served, clock, run_id)
    data = _data(served, GET_RUN, run_id=run_id)
    assert data["run"]["status"] == "FAILED"
    error = json.loads(data["run"]["output"])
    assert (error["name"], error["message"]) == ("MyError", "the end")
    assert _spans(served, run_id) == []
    trace = _data(
        served, "query($id: String!) { run(runID: $id) { trace { outputID } } }", id=run_id
    )
    output_id = trace["run"]["trace"]["outputID"]
    output = _data(served, GET_STEP_OUTPUT, output_id=output_id)["runTraceSpanOutputByID"]
    assert output["data"] is None
    assert output["error"]["message"] == "the end" and "Traceback" in output["error"]["stack"]


def test_a_sleeping_run_is_running_and_its_sleep_has_no_output(served: Served) -> None:
    _, run_id = _start(served, "read/nap")
    deadline = time.monotonic() + 10
    while len(spans := _spans(served, run_id)) < 2:
        assert time.monotonic() < deadline, spans
        time.sleep(0.05)
    assert [s["name"] for s in spans] == ["before", "long-nap"]
    assert spans[0]["outputID"] is not None and spans[1]["outputID"] is None
    data = _data(served, GET_RUN, run_id=run_id)
    assert data["run"] == {"output": None, "status": "RUNNING"}
    trace = _data(
        served, "query($id: String!) { run(runID: $id) { trace { outputID } } }", id=run_id
    )
    assert trace["run"]["trace"]["outputID"] is None
    for output_id in (f"{run_id}:{_sha1('long-nap')}", run_id):  # the sleep's, the run's
        not_yet = _gql(served, GET_STEP_OUTPUT, output_id=output_id)
        assert not_yet["data"] is None
        assert not_yet["errors"][0]["message"] == f"no output {output_id!r}"


def test_an_events_runs(served: Served, clock: FakeClock) -> None:
    event_id, run_id = _start(served, "read/steps")
    data = _data(served, GET_RUNS_OF_EVENT, event_id=event_id)
    assert data == {"event": {"functionRuns": [{"id": run_id}]}}
    _finish(served, clock, run_id)


def test_unknown_runs_events_and_outputs_are_errors_not_nulls(served: Served) -> None:
    unknown = new_id()
    for document, variables in (
        (GET_RUN, {"run_id": unknown}),
        (GET_STEPS, {"run_id": unknown}),
        (GET_STEP_OUTPUT, {"output_id": unknown}),
        (GET_STEP_OUTPUT, {"output_id": f"{unknown}:{_sha1('add')}"}),
        (GET_RUNS_OF_EVENT, {"event_id": unknown}),
    ):
        body = _gql(served, document, **variables)
        assert body["errors"], (document, body)
        assert all(unknown in e["message"] for e in body["errors"]), body
        assert not any((body["data"] or {}).values()), "no object beside the errors"
    body = _gql(served, GET_RUN, run_id="not-a-run")
    assert {e["message"] for e in body["errors"]} == {"runID: must be a run id (a ULID)"}
    body = _gql(served, GET_STEP_OUTPUT, output_id="nope:abc")
    assert body["errors"][0]["message"] == "outputID: must be a run id (a ULID)"


def test_malformed_documents_get_graphql_errors(served: Served) -> None:
    for document in (
        "query { run(runID: ",  # does not parse
        '{ run(runID: "x") { nope } }',  # no such field
        "{ run { status } }",  # a required argument missing
        "query Q($run_id: String!) { run(runID: $run_id) { status } }",  # no value for it
        'mutation { run(runID: "x") { status } }',  # no mutations here
        'subscription { run(runID: "x") { status } }',
        "{ runTrigger(runID: 5) { payloads } }",  # wrong type
    ):
        body = _gql(served, document)
        assert body["data"] is None and body["errors"], document
        assert all(isinstance(e["message"], str) for e in body["errors"])


def test_bad_request_bodies_are_400(served: Served) -> None:
    for content, field in (
        (b"{", "body"),
        (b"[]", "body"),
        (b'{"variables": {}}', "query"),
        (b'{"query": 1}', "query"),
        (b'{"query": "{ __typename }", "variables": []}', "variables"),
        (b'{"query": "{ __typename }", "operationName": 2}', "operationName"),
    ):
        response = served.http.post(
            "/v0/gql", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, content
        assert response.json()["status"] == 400 and response.json()["field"] == field
    ok = served.http.post("/v0/gql", json={"query": "{ __typename }"})
    assert ok.json() == {"data": {"__typename": "Query"}}
    too_big = served.http.post("/v0/gql", json={"query": "{ __typename }" + " " * 70_000})
    assert too_big.status_code == 413


# -- use_api state --------------------------------------------------------------------------


def test_batch_and_actions_as_the_sdk_client_reads_them(
    served: Served, clock: FakeClock, sdk_client: inngest.Inngest
) -> None:
    event_id, run_id = _start(served, "read/steps", {"x": 1})
    _finish(served, clock, run_id)

    events = sdk_client._get_batch_sync(run_id)  # validates each with the SDK's Event model
    assert not isinstance(events, Exception), events
    assert [(e.id, e.name, e.data) for e in events] == [(event_id, "read/steps", {"x": 1})]
    raw = served.http.get(f"/v0/runs/{run_id}/batch").json()
    assert isinstance(raw[0]["ts"], int) and set(raw[0]) == {"id", "name", "data", "user", "ts"}

    steps = sdk_client._get_steps_sync(run_id)
    assert not isinstance(steps, Exception), steps
    assert set(steps) == {_sha1("add"), _sha1("add:1"), _sha1("fails"), _sha1("nap")}
    assert steps[_sha1("add")] == {"data": FIRST}
    assert steps[_sha1("add:1")] == {"data": 0}
    error = steps[_sha1("fails")]
    assert isinstance(error, dict) and error["error"]["name"] == "MyError"
    assert error["error"]["message"] == "oh no" and "Traceback" in error["error"]["stack"]
    assert steps[_sha1("nap")] is None


def test_system_events_read_by_their_inngest_names(served: Served, clock: FakeClock) -> None:
    run_id = served.http.post("/v1/functions/dies/invoke", json={"data": {"y": 2}}).json()["data"]
    run_id = run_id["run_id"]
    [event] = served.http.get(f"/v0/runs/{run_id}/batch").json()
    assert (event["name"], event["data"]) == ("inngest/function.invoked", {"y": 2})
    [payload] = _data(served, GET_RUN, run_id=run_id)["runTrigger"]["payloads"]
    assert inngest.Event.model_validate_json(payload).name == "inngest/function.invoked"
    _finish(served, clock, run_id)


def test_a_parallel_branch_reads_its_parents_steps(served: Served, clock: FakeClock) -> None:
    event_id, run_id = _start(served, "read/fanout")
    _finish(served, clock, run_id)
    data = _data(served, GET_RUNS_OF_EVENT, event_id=event_id)
    assert data == {"event": {"functionRuns": [{"id": run_id}]}}, "branches are no runs of it"
    store = served.engine.operations.store
    branches = store.list_runs(RunFilter(parent_run_id=run_id))
    assert len(branches) == 2 and {b.trigger_kind for b in branches} == {"parallel"}
    parent = served.http.get(f"/v0/runs/{run_id}/actions").json()
    left, right = "group[0]/left", "group[1]/right"  # branch steps are scoped to their branch
    assert parent == {_sha1(left): {"data": "L"}, _sha1(right): {"data": "R"}}
    for branch in branches:
        assert served.http.get(f"/v0/runs/{branch.id}/actions").json() == parent
    names = sorted(s["name"] for s in _spans(served, run_id))
    assert names == [left, right], "the parallel bookkeeping is no span"
    data = _data(served, GET_RUN, run_id=run_id)
    assert data["run"]["status"] == "COMPLETED" and json.loads(data["run"]["output"]) == ["L", "R"]


def test_state_of_unknown_or_malformed_runs(served: Served) -> None:
    for part in ("batch", "actions"):
        unknown = served.http.get(f"/v0/runs/{new_id()}/{part}")
        assert unknown.status_code == 404 and unknown.json()["status"] == 404
        assert "no run" in unknown.json()["error"]
        malformed = served.http.get(f"/v0/runs/01NOPE/{part}")
        assert malformed.status_code == 400
        assert malformed.json() == {
            "error": "run_id: must be a run id (a ULID)",
            "status": 400,
            "field": "run_id",
        }


def test_a_lower_case_run_id_names_the_same_run(served: Served, clock: FakeClock) -> None:
    _, run_id = _start(served, "read/dies")
    _finish(served, clock, run_id)
    assert served.http.get(f"/v0/runs/{run_id.lower()}/batch").status_code == 200
    assert _data(served, GET_RUN, run_id=run_id.lower())["run"]["status"] == "FAILED"


# -- readiness and discovery ----------------------------------------------------------------


def test_the_dev_server_helper_sees_the_server_ready(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEV_SERVER_PORT", served.url.rsplit(":", 1)[1])
    helper = dev_server._Server()
    waiting = threading.Thread(target=helper._wait_for_server, daemon=True)
    waiting.start()
    waiting.join(timeout=5)
    ready = helper._ready_event.is_set()
    helper._ready_event.set()  # ends the helper's loop if it is still polling
    assert ready, "the helper's readiness poll never saw 200"
    response = served.http.post("/v0/connect/start")
    assert response.status_code == 200 and response.content == b""


def test_dev_describes_the_server(served: Served) -> None:
    response = served.http.get("/dev")
    assert response.status_code == 200
    info = response.json()
    assert info["version"] == metadata.version("stepline")
    assert info["isSingleNodeService"] is True and info["authed"] is False
    assert info["isMissingSigningKey"] is False and info["isMissingEventKeys"] is False
    assert info["startOpts"]["requireKeys"] is False
    assert sorted(f["id"] for f in info["functions"]) == ["dies", "fanout", "napper", "steps"]
    assert info["handlers"] == [] and info["features"] == {}


# -- auth -----------------------------------------------------------------------------------


def test_with_an_api_token_every_endpoint_needs_it(
    engine: Engine, serve: Callable[..., Served], clock: FakeClock
) -> None:
    served = serve(engine, AuthSettings(api_token="s3cret", event_keys=("key",)))
    _, run_id = _start(served, "read/steps")
    _finish(served, clock, run_id)
    requests: list[tuple[str, str, Any]] = [
        ("POST", "/v0/gql", {"query": GET_RUN, "variables": {"run_id": run_id}}),
        ("GET", f"/v0/runs/{run_id}/batch", None),
        ("GET", f"/v0/runs/{run_id}/actions", None),
        ("POST", "/v0/connect/start", None),
        ("GET", "/dev", None),
    ]
    for method, path, body in requests:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret"}):
            refused = served.http.request(method, path, json=body, headers=headers)
            assert refused.status_code == 401, (path, headers)
            assert refused.json()["status"] == 401
        allowed = served.http.request(
            method, path, json=body, headers={"authorization": "Bearer s3cret"}
        )
        assert allowed.status_code == 200, (path, allowed.text)
    info = served.http.get("/dev", headers={"authorization": "Bearer s3cret"}).json()
    assert info["startOpts"]["requireKeys"] is True and info["isMissingEventKeys"] is False
    assert info["isMissingSigningKey"] is True, "an API token but no signing key"


KEY = "signkey-test-" + "0123456789abcdef" * 4


def test_sdk_apps_read_state_with_their_signing_key(
    engine: Engine, serve: Callable[..., Served], clock: FakeClock
) -> None:
    served = serve(engine, AuthSettings(signing_keys=SigningKeys(KEY)))
    _, run_id = _start(served, "read/steps")
    _finish(served, clock, run_id)
    for key, readable in ((KEY, True), ("signkey-test-" + "ab" * 32, False)):
        client = inngest.Inngest(
            app_id="reader", api_base_url=served.url, signing_key=key, is_production=True
        )
        try:
            steps = client._get_steps_sync(run_id)  # sends the hashed key as a bearer token
            events = client._get_batch_sync(run_id)
        finally:
            client._http_client._http_client_sync.close()
        assert isinstance(steps, dict) is readable, steps
        assert isinstance(events, list) is readable, events
    assert served.http.get(f"/v0/runs/{run_id}/actions").status_code == 401
    info = served.http.get("/dev", headers={"authorization": f"Bearer {KEY}"}).json()
    assert info["startOpts"]["requireKeys"] is True
    assert info["isMissingSigningKey"] is False and info["isMissingEventKeys"] is True
    engine.operations.credentials.create("key", "ci", by="test")  # a named event key will do
    info = served.http.get("/dev", headers={"authorization": f"Bearer {KEY}"}).json()
    assert info["isMissingEventKeys"] is False
    engine.operations.credentials.revoke("key", "ci", by="test")
    info = served.http.get("/dev", headers={"authorization": f"Bearer {KEY}"}).json()
    assert info["isMissingEventKeys"] is True
