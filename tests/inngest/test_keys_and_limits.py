"""Signing keys, large state through `use_api`, and apps that answer badly or not at all."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import inngest
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from stepline._blocking import run_to_end
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.inngest.sync import SyncFailed, syncer_for
from stepline.engine.outputs import OutputLimits
from stepline.store.blobs import blob_ref
from tests.inngest.conftest import Stepline
from tests.loopback import Servers

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]
KEY = "signkey-test-" + "ab" * 32
SDK_HEADERS = {"content-type": "application/json", "x-inngest-sdk": "inngest-py:v0.5.19"}
OTHER_KEY = "signkey-test-" + "cd" * 32


def _sync_url(stepline: Stepline, url: str, key: str | None) -> Any:
    syncer = syncer_for(stepline.engine.operations, SigningKeys(key) if key else None)
    return run_to_end(syncer.sync_url(url))


def test_signed_calls_to_an_app_in_production_mode(
    make_stepline: Callable[..., Stepline], py_app: Serve
) -> None:
    stepline = make_stepline(signing_key=KEY)
    client = stepline.client("signed", is_production=True, signing_key=KEY)

    @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="t/hello"))
    def hello(ctx: inngest.ContextSync) -> str:
        return ctx.step.run("greet", lambda: "hello")

    synced = _sync_url(stepline, py_app(client, [hello]), KEY)  # in-band: signed both ways

    assert synced is not None and synced.app_id == "signed" and synced.functions == 1
    run = stepline.run_of(stepline.send("t/hello"))
    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == "hello"


def test_an_app_with_another_key_refuses_our_calls_and_cannot_register(
    make_stepline: Callable[..., Stepline], py_app: Serve
) -> None:
    stepline = make_stepline(signing_key=KEY)
    client = stepline.client("stranger", is_production=True, signing_key=OTHER_KEY)

    @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="t/stranger"))
    def hello(ctx: inngest.ContextSync) -> str:
        return "hello"

    url = py_app(client, [hello])
    with pytest.raises(SyncFailed, match="401"):
        _sync_url(stepline, url, KEY)  # the app refuses our in-band request's signature
    refused = stepline.http.post(
        "/fn/register",
        json={"appName": "stranger", "url": url, "functions": []},
        headers={"authorization": "Bearer not-our-key"},
    )
    assert refused.status_code == 401
    assert [app.id for app in stepline.engine.store.list_apps()] == []


def test_state_past_4_mib_of_blobs_reaches_the_sdk_through_use_api(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("big")
    chunk = "x" * (1536 * 1024)  # 1.5 MiB per step: three make the call body too large

    @client.create_function(fn_id="big", trigger=inngest.TriggerEvent(event="t/big"), retries=0)
    def big(ctx: inngest.ContextSync) -> list[int]:
        parts = [ctx.step.run(f"part-{i}", lambda: chunk) for i in range(3)]
        return [len(part) for part in parts]

    stepline.sync(py_app(client, [big]))
    run = stepline.run_of(stepline.send("t/big"), timeout=60)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == [len(chunk)] * 3
    # Each step's output is over 256 KiB: a blob, which every later call read back.
    steps = stepline.engine.store.get_steps(run.id)
    assert len(steps) == 3 and all(blob_ref(step.output) for step in steps)


def _register(stepline: Stepline, url: str, app_id: str = "broken") -> None:
    """Register a function served at `url`, as an SDK would (whatever really answers there)."""
    body = {
        "appName": app_id,
        "url": url,
        "functions": [
            {
                "id": f"{app_id}-fn",
                "name": "fn",
                "triggers": [{"event": f"t/{app_id}"}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "runtime": {"type": "http", "url": f"{url}?fnId={app_id}-fn&stepId=step"},
                        "retries": {"attempts": 1},
                    }
                },
            }
        ],
    }
    response = stepline.http.post("/fn/register", json=body)
    assert response.status_code == 200, response.text


def _garbage_app() -> Starlette:
    async def garbage(request: Request) -> Response:
        return PlainTextResponse("<html>502 from a proxy</html>")

    async def sleepy(request: Request) -> Response:
        await asyncio.sleep(30)
        return PlainTextResponse("too late")

    async def huge(request: Request) -> Response:  # an SDK's answer past the 8 MiB limit
        body = b'[{"id": "a", "op": "StepRun", "data": "' + b"x" * (9 << 20) + b'"}]'
        return Response(body, status_code=206, headers=SDK_HEADERS)

    async def big_step(request: Request) -> Response:  # a step output past the limit (4 MiB)
        memo = (await request.json())["steps"].get("a" * 40)
        if memo is not None:  # as an SDK does: the step's error fails the function
            error = {"name": "StepError", **memo["error"]}
            headers = {**SDK_HEADERS, "x-inngest-no-retry": "true"}
            return Response(json.dumps(error), status_code=500, headers=headers)
        op = {"id": "a" * 40, "op": "StepRun", "displayName": "big", "data": "x" * (5 << 20)}
        return Response(json.dumps([op]), status_code=206, headers=SDK_HEADERS)

    return Starlette(
        routes=[
            Route("/garbage", garbage, methods=["POST"]),
            Route("/sleepy", sleepy, methods=["POST"]),
            Route("/huge", huge, methods=["POST"]),
            Route("/big-step", big_step, methods=["POST"]),
        ]
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/garbage", "without X-Inngest-SDK"),
        ("/gone", "failed"),
        ("/huge", "larger than 8 MiB"),
        ("/big-step", "output of step 'big' is 5.0 MiB of JSON, over the limit of 4 MiB"),
    ],
)
def test_an_app_answering_garbage_or_gone_fails_the_run_with_a_clear_error(
    make_stepline: Callable[..., Stepline],
    py_app: Serve,
    servers: Servers,
    path: str,
    expected: str,
) -> None:
    stepline = make_stepline(outputs=OutputLimits(max_bytes=4 << 20))
    base = servers.start(_garbage_app())
    url = base + path if path != "/gone" else "http://127.0.0.1:9/gone"  # nothing listens on 9
    _register(stepline, url)
    client = stepline.client("healthy")

    @client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="t/healthy"))
    def ok(ctx: inngest.ContextSync) -> str:
        return "fine"

    stepline.sync(py_app(client, [ok]))

    broken = stepline.run_of(stepline.send("t/broken"))
    healthy = stepline.run_of(stepline.send("t/healthy"))

    assert broken.status == "FAILED"
    assert expected in json.loads(broken.error or "{}")["message"]
    attempts = stepline.engine.get_run(broken.id).attempts
    # retries.attempts = 1: two attempts; a step too large: the step's, then the function's
    assert len(attempts) == 2
    assert healthy.status == "COMPLETED"


def test_an_app_that_does_not_answer_in_time_fails_the_attempt(
    make_stepline: Callable[..., Stepline], servers: Servers
) -> None:
    stepline = make_stepline(request_timeout=1.0)
    _register(stepline, servers.start(_garbage_app()) + "/sleepy")
    started = time.monotonic()
    run = stepline.run_of(stepline.send("t/broken"))

    assert run.status == "FAILED"
    assert "in time" in json.loads(run.error or "{}")["message"]
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"url": "http://127.0.0.1:1/api"}, 400, "appName"),
        ({"appName": "a", "url": "ftp://x"}, 400, "url"),
        (
            {"appName": "a", "url": "http://127.0.0.1:1/api", "functions": [{"id": "a-f"}]},
            400,
            "functions[0] (id 'a-f')",
        ),
        (
            {
                "appName": "a",
                "url": "http://127.0.0.1:1/api",
                "functions": [
                    {
                        "id": "a-f",
                        "triggers": [{"cron": "61 * * * *"}],
                        "steps": {
                            "step": {"runtime": {"type": "http", "url": "http://127.0.0.1:1/api"}}
                        },
                    }
                ],
            },
            400,
            "functions[0] (id 'a-f').triggers[0].cron",
        ),
    ],
)
def test_a_bad_registration_is_refused_naming_the_field_and_stores_nothing(
    stepline: Stepline, body: dict[str, Any], status: int, field: str
) -> None:
    response = stepline.http.post("/fn/register", json=body)

    assert response.status_code == status
    answer = response.json()
    assert answer["status"] == status and answer["ok"] is False
    assert answer["error"].startswith(field), answer["error"]
    assert stepline.engine.store.list_apps() == []
    assert stepline.engine.store.list_functions() == []


def test_a_function_id_of_another_app_is_refused(stepline: Stepline) -> None:
    _register(stepline, "http://127.0.0.1:1/first", app_id="first")
    body = {
        "appName": "second",
        "url": "http://127.0.0.1:1/second",
        "functions": [
            {
                "id": "first-fn",
                "steps": {"step": {"runtime": {"type": "http", "url": "http://127.0.0.1:1/x"}}},
            }
        ],
    }
    response = stepline.http.post("/fn/register", json=body)

    assert response.status_code == 409
    assert "belongs to app 'first'" in response.json()["error"]
    assert [app.id for app in stepline.engine.store.list_apps()] == ["first"]
