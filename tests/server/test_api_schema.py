"""The OpenAPI document: it lists every API route the server has, real responses match it, and
a schemathesis run against the live server finds no 5xx and no response outside the schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import BaseModel
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

import stepline
from stepline.engine import operations
from stepline.engine.engine import Engine
from stepline.server import models
from stepline.server.app import API, create_app
from tests.server.conftest import Served

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _app() -> stepline.App:
    app = stepline.App("schema-test")

    @app.function(id="echo", triggers=[stepline.event("test/echo")], retries=0)
    def echo(ctx: Any) -> dict[str, Any]:
        ctx.progress(1, 2, "half")
        ctx.count("seen", 1)
        ctx.log.info("echoing")
        return {"echo": ctx.step.run("read", lambda: ctx.event["data"])}

    @app.function(id="nightly", triggers=[stepline.cron("0 0 * * *", tz="Europe/Paris")])
    def nightly(ctx: Any) -> None:
        ctx.step.sleep("nap", "1h")

    return app


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    served = serve(make_engine(_app()))
    ids = served.http.post("/e/k", json=[{"name": "test/echo", "data": {"n": i}} for i in range(3)])
    for event_id in ids.json()["ids"]:
        for run in served.http.get(f"/v1/events/{event_id}/runs").json()["data"]:
            served.engine.wait_for_run(run["id"], 10)
    served.http.post("/v1/functions/nightly/invoke", json={"data": {}})
    return served


def _document(served: Served) -> dict[str, Any]:
    response = served.http.get("/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_document_lists_exactly_the_servers_api_routes(served: Served) -> None:
    document = _document(served)
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    app = create_app(served.engine.operations)
    served_routes = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(("/v1/", "/e/"))
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert documented == served_routes
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    runs = document["paths"]["/v1/runs"]["get"]
    assert {p["name"] for p in runs["parameters"]} == {
        "function_id",
        "status",
        "trigger_kind",
        "event_id",
        "created_after",
        "created_before",
        "q",
        "before",
        "limit",
    }
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            assert "400" in operation["responses"], (path, method)
            if path.startswith("/v1/") and path != "/v1/openapi.json":
                assert "401" in operation["responses"], (path, method)
                assert operation.get("security") != []
    assert document["paths"]["/v1/openapi.json"]["get"]["security"] == []


def test_the_document_is_public_when_a_token_is_required(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    from stepline.server.auth import AuthSettings

    served = serve(make_engine(_app()), AuthSettings(api_token="tok"))
    assert served.http.get("/v1/openapi.json").status_code == 200
    assert served.http.get("/v1/runs").status_code == 401


def test_real_responses_match_the_response_models(served: Served) -> None:
    run_id = served.http.get("/v1/runs", params={"function_id": "echo"}).json()["data"][0]["id"]
    event_id = served.http.get("/v1/events").json()["data"][0]["internal_id"]
    expected: list[tuple[str, type[BaseModel]]] = [
        ("/v1/runs", models.RunsPage),
        (f"/v1/runs/{run_id}", models.RunDetailResponse),
        ("/v1/events", models.EventsPage),
        (f"/v1/events/{event_id}", models.EventResponse),
        (f"/v1/events/{event_id}/runs", models.RunList),
        ("/v1/functions", models.FunctionList),
        ("/v1/functions/nightly", models.FunctionResponse),
        ("/v1/workers", models.WorkerList),
        ("/v1/runs/nope", models.Error),
    ]
    for path, model in expected:
        body = served.http.get(path).json()
        model.model_validate(body)  # extra="forbid": an undocumented key fails here
    detail = served.http.get(f"/v1/runs/{run_id}").json()["data"]
    assert detail["steps"] and detail["logs"] and detail["progress"]
    nightly = served.http.get("/v1/functions/nightly").json()["data"]
    assert set(nightly["triggers"][0]) == {
        "cron",
        "tz",
        "missed",
        "next_fire_at",
        "last_fire_at",
        "missed_fires",
    }


def test_schemathesis_finds_no_server_errors_and_no_responses_outside_the_schema(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generated bulk replays may match every run; a small cap keeps each one (and the test) fast.
    monkeypatch.setattr(operations, "MAX_BULK_RUNS", 50)
    loaded = schemathesis.openapi.from_url(f"{served.url}/v1/openapi.json")
    # Streams answer for as long as the client listens; they are tested in test_api.
    schema = loaded.exclude(path_regex=r"/stream$")
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        calls[label] = 0
        try:
            _fuzz(operation, served.url, calls, label)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            failures[label] = str(exc)[:3000]
    assert not failures, json.dumps(failures, indent=2)
    # Schemathesis never calls the path the document came from.
    fuzzed = {f"{e.method} {e.path}" for e in API if not e.stream} - {"GET /v1/openapi.json"}
    assert set(calls) == fuzzed, "every operation but the streams"
    assert all(n > 0 for n in calls.values()), calls
    print(f"schemathesis: {len(calls)} operations, {sum(calls.values())} requests")


def _fuzz(operation: Any, url: str, calls: dict[str, int], label: str) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=timedelta(seconds=5),
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        calls[label] += 1
        case.call_and_validate(base_url=url, checks=CHECKS)

    call()
