"""The OpenAPI document: it lists every API route the server has, real responses match it, and
schemathesis with every check, run against the live server, finds no difference between what
the document promises and what the server does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import schemathesis
from pydantic import BaseModel
from starlette.routing import Route

import stepline
from stepline.engine import operations
from stepline.engine.engine import Engine
from stepline.server import models
from stepline.server.app import API, create_app
from stepline.server.auth import AuthSettings
from stepline.server.throttle import FailureLimiter
from tests.server.conftest import Served

EXAMPLES_PER_OPERATION = 15
SCHEMATHESIS_SECONDS = 240
TOKEN = "schema-test-token-0123456789"
EVENT_KEY = "schema-test-event-key"
# Schemathesis' own list of statuses that reject invalid data, and 413: a list of events over
# the cap per request is refused as too large.
REJECTIONS = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]
SCHEMATHESIS_CONFIG = f"""
headers = {{ Authorization = "Bearer {TOKEN}" }}
[parameters]
"path.event_key" = "{EVENT_KEY}"
[checks.negative_data_rejection]
expected-statuses = {REJECTIONS!r}
# A sync by URL PUTs whatever URL was generated: nothing serves an app there, which is a 502.
[[operations]]
include-name = "POST /v1/apps"
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "502"]
# A bulk action on more runs than the cap (50 here: see the test) is 400, which no schema can
# say: replays made by the fuzzing (each with its reason) can take a filter past it.
[[operations]]
include-name = "POST /v1/runs/replay"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409", "413"]
[[operations]]
include-name = "POST /v1/runs/cancel"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "413"]
# A rerun's from_step must name a step of that run, which no schema can say: 400 otherwise.
[[operations]]
include-name = "POST /v1/runs/{{run_id}}/rerun"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409", "413"]
"""


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


def _with_runs(served: Served) -> Served:
    """The server after three events ran `echo` and `nightly` was invoked."""
    events = [{"name": "test/echo", "data": {"n": i}} for i in range(3)]
    ids = served.http.post(f"/e/{EVENT_KEY}", json=events)
    for event_id in ids.json()["ids"]:
        for run in served.http.get(f"/v1/events/{event_id}/runs").json()["data"]:
            served.engine.wait_for_run(run["id"], 10)
    served.http.post("/v1/functions/nightly/invoke", json={"data": {}})
    return served


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return _with_runs(serve(make_engine(_app())))


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
        "dry_run",
        "error_name",
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


@pytest.mark.slow
@pytest.mark.timeout(SCHEMATHESIS_SECONDS + 60)
def test_schemathesis_with_every_check_finds_nothing(
    make_engine: Callable[..., Engine],
    serve: Callable[..., Served],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`st run --checks all` passes: coverage, fuzzing and stateful phases, seeded.

    The server has a token and an event key, as in production, so the checks that send no or
    wrong credentials (`ignored_auth`, `missing_required_header`) have something to check; its
    throttle is off, or their wrong tokens would lock the run out. Streams answer for as long
    as the client listens; they are tested in test_api.
    """
    # Generated bulk replays may match every run; a small cap keeps each one (and the test) fast.
    monkeypatch.setattr(operations, "MAX_BULK_RUNS", 50)
    auth = AuthSettings(
        api_token=TOKEN, event_keys=(EVENT_KEY,), limiter=FailureLimiter(max_failures=10**9)
    )
    served = serve(make_engine(_app()), auth)
    served.http.headers["authorization"] = f"Bearer {TOKEN}"
    _with_runs(served)
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    report = tmp_path / "junit.xml"
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{served.url}/v1/openapi.json",
        *("--checks", "all"),
        # DELETE /v1/runs/{id} cancels (as Inngest's API does): the run stays readable.
        *("--exclude-checks", "use_after_free"),
        *("--exclude-path-regex", "/stream$"),
        *("--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "1", "--workers", "1"),
        *("--generation-database", "none", "--continue-on-failure", "--no-color"),
        *("--report", "junit", "--report-junit-path", str(report)),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=SCHEMATHESIS_SECONDS
    )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    tested = {case.get("name") for case in ElementTree.parse(report).iter("testcase")}
    # Schemathesis never calls the path the document came from.
    fuzzed = {f"{e.method} {e.path}" for e in API if not e.stream} - {"GET /v1/openapi.json"}
    assert fuzzed <= tested, f"not tested: {sorted(fuzzed - tested)}"
