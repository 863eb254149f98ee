"""`GET /metrics` on both stores, over real HTTP, read with prometheus-client's own parser.

After a known workload (runs completed, one retried, one failed, one cancelled, one held back
by its throttle; a function no worker serves, whose queue lags while the fake clock moves) the
counters, histograms and gauges say exactly what happened. Also: the API token, refusals,
open streams, a database that does not answer, and the docs' alert rules and dashboard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.metrics import Metrics
from stepline.engine.operations import Operations
from stepline.sdk.step import Step
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings
from stepline.store.base import FunctionRecord, RunRecord, Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore
from tests.engine.support import drive, eventually, only_run
from tests.loopback import Servers
from tests.server.metrics_support import Scrape, scrape

DOCS = Path(__file__).resolve().parents[2] / "docs"
TOKEN = "metrics-test-token-0123456789"
Serve = Callable[..., httpx.Client]


@pytest.fixture
def serve_metrics() -> Iterator[Serve]:
    """Serve operations (with a process's metrics) on loopback; stopped after the test."""
    servers = Servers()
    clients: list[httpx.Client] = []

    def start(
        operations: Operations, auth: AuthSettings | None = None, metrics: Metrics | None = None
    ) -> httpx.Client:
        url = servers.start(create_app(operations, auth, metrics))
        http = httpx.Client(base_url=url, timeout=10)
        clients.append(http)
        return http

    yield start
    for http in clients:
        http.close()
    servers.stop()


def _app(clock: FakeClock) -> stepline.App:
    app = stepline.App("metered")
    tries = {"flaky": 0}

    def work() -> None:
        clock.advance(2.5)  # each "ok" step takes 2.5 s

    def first_fails() -> str:
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            raise RuntimeError("the first attempt fails")
        return "done"

    def always_fails() -> None:
        raise RuntimeError("always")

    @app.function(id="ok", triggers=[stepline.event("m/ok")], retries=0)
    def ok(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("work", work)

    @app.function(id="flaky", triggers=[stepline.event("m/flaky")], retries=2)
    def flaky(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("try", first_fails)

    @app.function(id="broken", triggers=[stepline.event("m/broken")], retries=0)
    def broken(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("fail", always_fails)

    @app.function(
        id="throttled",
        triggers=[stepline.event("m/throttled")],
        throttle=stepline.Throttle(limit=1, period="1h"),
    )
    def throttled(ctx: stepline.Context[Step]) -> None:
        return None

    return app


def _unserved(store: Store, clock: FakeClock) -> None:
    """Register function "lagging" (on m/lag) of an app no worker runs: its runs only queue."""
    app = stepline.App("elsewhere")

    @app.function(id="lagging", triggers=[stepline.event("m/lag")])
    def lagging(ctx: stepline.Context[Step]) -> None:
        return None

    fn = app.functions["lagging"]
    record = FunctionRecord(id=fn.id, app_id=app.id, name=fn.name, config=fn.config())
    store.sync_functions(app.id, [record], clock.now())


def _at_intake(engine: Engine, http: httpx.Client, name: str) -> str:
    """POST one event to /e/{key}; the id of the run it started."""
    response = http.post("/e/any-key", json={"name": name, "data": {}})
    [event_id] = response.json()["ids"]
    return only_run(engine, event_id).id


def _by_api(engine: Engine, http: httpx.Client, name: str) -> str:
    """POST one event to /v1/events; the id of the run it started."""
    response = http.post("/v1/events", json={"name": name, "data": {}})
    [event_id] = response.json()["data"]["ids"]
    return only_run(engine, event_id).id


def test_metrics_count_a_known_workload_and_the_queue_lag(
    make_engine: Callable[..., Engine], clock: FakeClock, store: Store, serve_metrics: Serve
) -> None:
    engine = make_engine(_app(clock))
    _unserved(store, clock)
    http = serve_metrics(engine.operations, metrics=engine.metrics)
    for _ in range(3):
        drive(engine, clock, _at_intake(engine, http, "m/ok"))
    flaky = drive(engine, clock, _by_api(engine, http, "m/flaky"))
    assert flaky.status == "COMPLETED", flaky.error
    assert drive(engine, clock, _by_api(engine, http, "m/broken")).status == "FAILED"
    drive(engine, clock, _by_api(engine, http, "m/throttled"))
    held = _by_api(engine, http, "m/throttled")  # its throttle holds it back an hour
    lagging = [_at_intake(engine, http, "m/lag") for _ in range(3)]
    assert http.post(f"/v1/runs/{lagging[0]}/cancel").status_code == 200
    assert http.get("/v1/runs/no-such-run").status_code == 404
    assert http.post("/v1/events", json={"data": {}}).status_code == 400
    clock.advance(90)  # the two runs no worker serves have been due for 90 s

    # The worker records its liveness with the fake clock's time at its next heartbeat.
    found = eventually(
        lambda: (s := scrape(http)).value("stepline_workers_alive") == 1 and s,
        what="the worker's heartbeat after the clock moved",
    )

    assert isinstance(found, Scrape)
    assert engine.store.get_run(held).detail == "THROTTLED"
    _assert_runs(found, flaky_seconds=_seconds(flaky))
    _assert_steps(found)
    _assert_requests(found)
    _assert_gauges(found)


def _seconds(run: RunRecord) -> float:
    assert run.started_at is not None and run.ended_at is not None
    return (run.ended_at - run.started_at).total_seconds()


def _assert_runs(found: Scrape, *, flaky_seconds: float) -> None:
    started = found.labelled("stepline_runs_started_total")
    assert started == {
        frozenset({("function", fn)}): count
        for fn, count in {"ok": 3, "flaky": 1, "broken": 1, "throttled": 1}.items()
    }, "the held-back run and the unserved ones never started"
    ended = {
        (labels["function"], labels["status"]): value
        for labels, value in (
            (dict(key), v) for key, v in found.labelled("stepline_runs_ended_total").items()
        )
    }
    assert ended == {
        ("ok", "COMPLETED"): 3,
        ("flaky", "COMPLETED"): 1,
        ("broken", "FAILED"): 1,
        ("throttled", "COMPLETED"): 1,
        ("lagging", "CANCELLED"): 1,  # ended by the server's cancel, counted by it
    }
    duration = "stepline_run_duration_seconds"
    assert found.value(f"{duration}_count", function="ok", status="COMPLETED") == 3
    assert found.value(f"{duration}_sum", function="ok", status="COMPLETED") == 7.5
    assert flaky_seconds > 0, "the retry waited for the fake clock"
    assert found.value(f"{duration}_sum", function="flaky", status="COMPLETED") == flaky_seconds
    assert found.value(f"{duration}_count", function="broken", status="FAILED") == 1


def _assert_steps(found: Scrape) -> None:
    attempts = "stepline_step_attempts_total"
    assert found.value(attempts, function="ok", outcome="completed") == 3
    assert found.value(attempts, function="flaky", outcome="retried") == 1
    assert found.value(attempts, function="flaky", outcome="completed") == 1
    assert found.value(attempts, function="broken", outcome="failed") == 1
    assert found.value(attempts, function="broken", outcome="completed") is None
    duration = "stepline_step_duration_seconds"
    assert found.value(f"{duration}_count", function="ok") == 3
    assert found.value(f"{duration}_sum", function="ok") == 7.5
    assert found.value(f"{duration}_bucket", function="ok", le="1.0") == 0
    assert found.value(f"{duration}_bucket", function="ok", le="5.0") == 3


def _assert_requests(found: Scrape) -> None:
    assert found.value("stepline_intake_events_total", via="intake") == 6  # 3 ok, 3 lag
    assert found.value("stepline_intake_events_total", via="api") == 4
    rejected = "stepline_requests_rejected_total"
    assert found.value(rejected, surface="api", reason="not_found") == 1
    assert found.value(rejected, surface="api", reason="invalid") == 1
    assert found.value("stepline_store_errors_total") == 0
    assert found.value("stepline_store_outage_seconds_total") == 0
    assert found.value("stepline_sse_clients") == 0


def _assert_gauges(found: Scrape) -> None:
    assert found.value("stepline_store_up") == 1
    assert found.value("stepline_queue_depth", function="lagging") == 2
    assert found.value("stepline_queue_oldest_due_age_seconds", function="lagging") == 90
    for served in ("ok", "flaky", "broken", "throttled"):  # every function has its series
        assert found.value("stepline_queue_depth", function=served) == 0
        assert found.value("stepline_queue_oldest_due_age_seconds", function=served) == 0
    waiting = "stepline_runs_waiting"
    assert found.value(waiting, function="throttled", reason="throttle") == 1
    assert found.value(waiting, function="throttled", reason="concurrency") == 0
    assert found.value(waiting, function="lagging", reason="throttle") == 0
    assert found.value("stepline_step_in_flight_max_age_seconds", function="ok") == 0
    assert found.value("stepline_worker_slots", state="busy") == 0
    assert found.value("stepline_worker_slots", state="free") == 8


def test_metrics_need_the_api_token_when_the_server_has_one(
    make_engine: Callable[..., Engine], serve_metrics: Serve
) -> None:
    engine = make_engine(stepline.App("empty"))
    http = serve_metrics(engine.operations, AuthSettings(api_token=TOKEN), engine.metrics)

    assert http.get("/metrics").status_code == 401
    wrong = http.get("/metrics", headers={"authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    found = scrape(http, authorization=f"Bearer {TOKEN}")

    rejected = "stepline_requests_rejected_total"
    assert found.value(rejected, surface="api", reason="unauthorized") == 2
    assert found.value("stepline_workers_alive") == 1


def test_open_event_streams_are_counted_until_they_close(
    make_engine: Callable[..., Engine], serve_metrics: Serve
) -> None:
    engine = make_engine(stepline.App("empty"))
    http = serve_metrics(engine.operations, metrics=engine.metrics)

    with http.stream("GET", "/v1/runs/stream") as stream:
        lines = stream.iter_lines()  # kept: a dropped iterator would close the stream
        assert next(lines) == "retry: 2000"
        assert scrape(http).value("stepline_sse_clients") == 1
    eventually(
        lambda: scrape(http).value("stepline_sse_clients") == 0, what="the closed stream to go"
    )


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(
    make_engine: Callable[..., Engine], serve_metrics: Serve
) -> None:
    engine = make_engine(stepline.App("empty"))
    http = serve_metrics(engine.operations, metrics=engine.metrics)

    response = http.get("/metrics", headers={"accept": "application/openmetrics-text"})

    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_database_that_does_not_answer_leaves_the_process_metrics(
    kind: str, tmp_path: Path, serve_metrics: Serve
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    store = (
        SqliteStore(directory)  # SQLite cannot open a directory
        if kind == "sqlite"
        else PostgresStore("postgresql://postgres@127.0.0.1:1/none")  # nothing listens there
    )
    http = serve_metrics(Operations(store))

    try:
        found = scrape(http)
    finally:
        store.close()

    assert found.value("stepline_store_up") == 0
    assert found.value("stepline_store_errors_total") == 1
    assert (found.value("stepline_store_outage_seconds_total") or 0) > 0
    assert found.value("stepline_workers_alive") is None, "no gauge without the database"
    assert found.value("process_start_time_seconds") is not None


def test_the_docs_alert_rules_and_dashboard_use_metrics_that_exist(
    make_engine: Callable[..., Engine], serve_metrics: Serve
) -> None:
    engine = make_engine(stepline.App("empty"))
    http = serve_metrics(engine.operations, metrics=engine.metrics)
    # Every metric served has its HELP line, with samples or not yet.
    served = set(re.findall(r"^# HELP (\w+)", http.get("/metrics").text, flags=re.MULTILINE))
    operations = (DOCS / "operations.md").read_text()
    [rules_yaml] = re.findall(r"```yaml\n(groups:.*?)```", operations, flags=re.DOTALL)
    rules = yaml.safe_load(rules_yaml)
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]

    assert {a["alert"] for a in alerts} >= {
        "SteplineFunctionFailing",
        "SteplineQueueLagGrowing",
        "SteplineNoLiveWorker",
        "SteplineStuckRun",
    }
    assert exprs, "the dashboard has panels with queries"
    for expr in [a["expr"] for a in alerts] + exprs:
        for name in re.findall(r"\b(stepline_[a-z_]+)", expr):
            family = re.sub(r"_(total|sum|count|bucket)$", "", name)
            assert family in served or name in served, f"{name} in {expr!r} is not served"
