"""SDK function configs (protocol §5.6) into registry records, fed with real inngest-py output.

The Python SDK part serves a real inngest-py app on loopback and lets it sync, over HTTP, to a
loopback stand-in for the server's `POST /fn/register`: the configs tested are exactly the ones
the SDK sends. The JS-shaped configs follow the protocol note's examples.
"""

from __future__ import annotations

import http.server
import json
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi
import httpx
import pytest
from pydantic.warnings import PydanticDeprecatedSince20

import stepline
from stepline._cel import FailureLog, matches
from stepline.engine.admission import Admission, function_config
from stepline.engine.events import CRON_EVENT, INVOKED_EVENT, build_event
from stepline.engine.inngest import wire
from stepline.engine.inngest.config import SdkFunction, sdk_functions
from stepline.engine.inngest.names import (
    INNGEST_SYSTEM_EVENTS,
    STEPLINE_SYSTEM_EVENTS,
    to_inngest,
    to_stepline,
)
from stepline.errors import InvalidInput
from stepline.sdk.triggers import CronTrigger, EventTrigger, trigger_from_config
from stepline.store.base import (
    CANCELLED_EVENT,
    FAILED_EVENT,
    FINISHED_EVENT,
    Bucket,
    Gather,
    NewListener,
    Slot,
)
from tests.loopback import Servers

with warnings.catch_warnings():  # inngest 0.5 still declares class-based pydantic configs
    warnings.simplefilter("ignore", PydanticDeprecatedSince20)
    import inngest.fast_api  # binds `inngest` too

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
URL = "https://shop.example.com/api/inngest?fnId=shop-x&stepId=step"
PREFIX = "functions[0] (id 'shop-x')."


def configs(functions: list[SdkFunction]) -> dict[str, dict[str, Any]]:
    """Each function's parsed config, by id."""
    return {fn.id: json.loads(fn.config) for fn in functions}


def js_function(**changes: Any) -> dict[str, Any]:
    """A minimal JS-shaped function config, with `changes` applied."""
    step = {"id": "step", "name": "step", "runtime": {"type": "http", "url": URL}}
    return {
        "id": "shop-x",
        "name": "X",
        "triggers": [{"event": "shop/x"}],
        "steps": {"step": step},
        **changes,
    }


def steps(**step: Any) -> dict[str, Any]:
    """A `steps` value whose `step` entry is `step`."""
    return {"step": step}


def plan(function_id: str, config: str, event: dict[str, Any], kind: Any = "event") -> Any:
    """Admission's plan for a run of the function triggered by `event`."""
    record = build_event(event, now=NOW)
    options = function_config(config)
    return Admission(FailureLog()).plan(function_id, options, kind=kind, event=record, now=NOW)


# -- names -----------------------------------------------------------------------------------


def test_system_events_have_one_name_each_side() -> None:
    pairs = {
        "inngest/function.failed": FAILED_EVENT,
        "inngest/function.finished": FINISHED_EVENT,
        "inngest/function.cancelled": CANCELLED_EVENT,
        "inngest/function.invoked": INVOKED_EVENT,
        "inngest/scheduled.timer": CRON_EVENT,
    }
    for sdk_name, stored in pairs.items():
        assert to_stepline(sdk_name) == stored
        assert to_inngest(stored) == sdk_name
    assert set(pairs) == INNGEST_SYSTEM_EVENTS
    assert set(pairs.values()) == STEPLINE_SYSTEM_EVENTS


@pytest.mark.parametrize(
    "name", ["shop/order.paid", "inngest/function.other", "stepline/custom", "inngest/*", ""]
)
def test_other_names_pass_unchanged(name: str) -> None:
    assert to_stepline(name) == name
    assert to_inngest(name) == name


# -- the official Python SDK, syncing for real -----------------------------------------------


class _Register(http.server.BaseHTTPRequestHandler):
    """Records each `POST /fn/register` body and answers as the Go server does."""

    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.split("?")[0] == "/fn/register":
            self.bodies.append(json.loads(body))
        answer = json.dumps({"ok": True, "modified": True}).encode()
        self.send_response(200 if self.path.startswith("/fn/register") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def sdk_app(api_url: str) -> fastapi.FastAPI:
    """A real inngest-py app using every option, its server at `api_url`."""
    client = inngest.Inngest(app_id="shop", is_production=False, api_base_url=api_url)

    def report_failure(ctx: inngest.ContextSync) -> None:
        return None

    @client.create_function(
        fn_id="send-receipt",
        name="Send receipt",
        trigger=inngest.TriggerEvent(event="shop/order.paid", expression="event.data.total > 0"),
        retries=2,
        concurrency=[
            inngest.Concurrency(limit=5, key="event.data.customer_id"),
            inngest.Concurrency(limit=50, key="event.data.region", scope="env"),
        ],
        throttle=inngest.Throttle(
            limit=10, period=timedelta(minutes=1), burst=2, key="event.data.customer_id"
        ),
        rate_limit=inngest.RateLimit(
            limit=100, period=timedelta(hours=1), key="event.data.customer_id"
        ),
        debounce=inngest.Debounce(
            period=timedelta(seconds=30), key="event.data.customer_id", timeout=timedelta(minutes=5)
        ),
        priority=inngest.Priority(run="event.data.vip ? 120 : 0"),
        idempotency="event.data.order_id",
        singleton=inngest.Singleton(key="event.data.customer_id", mode="cancel"),
        cancel=[
            inngest.Cancel(
                event="shop/order.refunded",
                if_exp="event.data.order_id == async.data.order_id",
                timeout=timedelta(days=1),
            )
        ],
        timeouts=inngest.Timeouts(start=timedelta(minutes=5), finish=timedelta(minutes=30)),
        on_failure=report_failure,
    )
    def send_receipt(ctx: inngest.ContextSync) -> None:
        return None

    @client.create_function(
        fn_id="nightly-report",
        trigger=[
            inngest.TriggerCron(cron="TZ=Europe/Paris 0 3 * * *", jitter="30s"),
            inngest.TriggerEvent(event="shop/report.requested"),
        ],
        retries=25,
        batch_events=inngest.Batch(
            max_size=50, timeout=timedelta(seconds=10), key="event.data.warehouse"
        ),
    )
    def nightly_report(ctx: inngest.ContextSync) -> None:
        return None

    @client.create_function(
        fn_id="audit-runs", trigger=inngest.TriggerEvent(event="inngest/function.finished")
    )
    def audit_runs(ctx: inngest.ContextSync) -> None:
        return None

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [send_receipt, nightly_report, audit_runs])
    return app


@pytest.fixture(scope="module")
def synced() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(the SDK app's URL, the `functions` it sent to `POST /fn/register` when synced)."""
    _Register.bodies = []
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Register)
    api_thread = threading.Thread(target=api.serve_forever, daemon=True)
    api_thread.start()
    app = sdk_app(f"http://127.0.0.1:{api.server_address[1]}")
    servers = Servers()
    try:
        app_url = servers.start(app) + "/api/inngest"
        response = httpx.put(app_url, timeout=30)  # what the dev server's "sync" does
        assert response.status_code == 200, response.text
        assert len(_Register.bodies) == 1
        yield app_url, _Register.bodies[0]["functions"]
    finally:
        servers.stop()
        api.shutdown()
        api.server_close()
        api_thread.join(timeout=10)


def test_python_sdk_function_with_every_option(synced: tuple[str, list[dict[str, Any]]]) -> None:
    app_url, raw = synced
    functions = {fn.id: fn for fn in sdk_functions(raw)}
    fn = functions["shop-send-receipt"]
    assert fn.name == "Send receipt"
    customer = "event.data.customer_id"
    assert json.loads(fn.config) == {
        "triggers": [{"event": "shop/order.paid", "if": "event.data.total > 0"}],
        "retries": 2,
        "timeout_seconds": 1800.0,
        "start_timeout_seconds": 300.0,
        "concurrency": [
            {"limit": 5, "key": customer, "scope": "function"},
            {"limit": 50, "key": "event.data.region", "scope": "all"},
        ],
        "throttle": {"limit": 10, "period_seconds": 60.0, "burst": 2, "key": customer},
        "rate_limit": {"limit": 100, "period_seconds": 3600.0, "key": customer},
        "debounce": {"period_seconds": 30.0, "key": customer, "timeout_seconds": 300.0},
        "priority": {"run": "event.data.vip ? 120 : 0"},
        "idempotency": "event.data.order_id",
        "singleton": {"key": customer, "mode": "cancel"},
        "cancel_on": [
            {
                "event": "shop/order.refunded",
                "if": "event.data.order_id == async.data.order_id",
                "timeout_seconds": 86400.0,
            }
        ],
        "url": f"{app_url}?fnId=shop-send-receipt&stepId=step",
    }


def test_python_sdk_config_is_stored_as_a_python_function_would_be(
    synced: tuple[str, list[dict[str, Any]]],
) -> None:
    app = stepline.App("shop")

    @app.function(
        id="send-receipt",
        triggers=stepline.event("shop/order.paid", if_="event.data.total > 0"),
        retries=2,
        timeouts=stepline.Timeouts(start="5m", finish="30m"),
        concurrency=[
            stepline.Concurrency(limit=5, key="event.data.customer_id"),
            stepline.Concurrency(limit=50, key="event.data.region", scope="all"),
        ],
        throttle=stepline.Throttle(limit=10, period="1m", burst=2, key="event.data.customer_id"),
        rate_limit=stepline.RateLimit(limit=100, period="1h", key="event.data.customer_id"),
        debounce=stepline.Debounce(period="30s", key="event.data.customer_id", timeout="5m"),
        priority=stepline.Priority(run="event.data.vip ? 120 : 0"),
        idempotency="event.data.order_id",
        singleton=stepline.Singleton(key="event.data.customer_id", mode="cancel"),
        cancel_on=stepline.CancelOn(
            "shop/order.refunded", if_="event.data.order_id == async.data.order_id", timeout="1d"
        ),
    )
    def send_receipt(ctx: Any) -> None:
        return None

    stored = configs(sdk_functions(synced[1]))["shop-send-receipt"]
    del stored["url"]
    assert stored == json.loads(send_receipt.config())


def test_python_sdk_failure_handler(synced: tuple[str, list[dict[str, Any]]]) -> None:
    app_url, raw = synced
    fn = {f.id: f for f in sdk_functions(raw)}["shop-send-receipt-failure"]
    assert fn.name == "Send receipt (failure)"
    assert json.loads(fn.config) == {
        "triggers": [
            {
                "event": "stepline/function.failed",
                "if": "event.data.function_id == 'shop-send-receipt'",
            }
        ],
        "retries": 0,
        "timeout_seconds": None,
        "url": f"{app_url}?fnId=shop-send-receipt-failure&stepId=step",
    }
    (trigger,) = map(trigger_from_config, function_config(fn.config)["triggers"])
    assert isinstance(trigger, EventTrigger) and trigger.if_ is not None
    assert trigger.name == FAILED_EVENT
    for failed_id, expected in (("shop-send-receipt", True), ("shop-nightly-report", False)):
        failed = {"name": FAILED_EVENT, "data": {"function_id": failed_id}}
        found = matches(trigger.if_, {"event": failed}, where="test", failures=FailureLog())
        assert found is expected


def test_python_sdk_cron_batch_and_system_trigger(
    synced: tuple[str, list[dict[str, Any]]],
) -> None:
    app_url, raw = synced
    stored = configs(sdk_functions(raw))
    assert list(stored) == [
        "shop-send-receipt",
        "shop-send-receipt-failure",
        "shop-nightly-report",
        "shop-audit-runs",
    ]
    nightly = stored["shop-nightly-report"]
    assert nightly["triggers"] == [
        {"cron": "0 3 * * *", "tz": "Europe/Paris", "missed": "latest", "jitter_seconds": 30.0},
        {"event": "shop/report.requested"},
    ]
    assert nightly["retries"] == 20  # 25 clamped, as Inngest does
    assert nightly["batch_events"] == {
        "max_size": 50,
        "timeout_seconds": 10.0,
        "key": "event.data.warehouse",
    }
    audit = stored["shop-audit-runs"]
    assert audit["triggers"] == [{"event": FINISHED_EVENT}]
    assert audit["retries"] == 4  # the SDK sent none: Inngest's default
    assert audit["url"] == f"{app_url}?fnId=shop-audit-runs&stepId=step"


# -- what the engine reads back ----------------------------------------------------------------


def test_admission_plans_a_python_sdk_function(synced: tuple[str, list[dict[str, Any]]]) -> None:
    fn = {f.id: f for f in sdk_functions(synced[1])}["shop-send-receipt"]
    data = {"customer_id": "c1", "region": "eu", "vip": True, "order_id": "o1", "total": 5}
    flow = plan(fn.id, fn.config, {"name": "shop/order.paid", "data": data})
    assert flow.slots == (
        Slot(key='concurrency:shop-send-receipt:"c1"', limit=5),
        Slot(key='all:"eu"', limit=50),
    )
    assert flow.priority == 120
    assert flow.throttle == Bucket(
        key='throttle:shop-send-receipt:"c1"', limit=10, period_seconds=60.0, burst=2
    )
    assert flow.rate_limit == Bucket(
        key='rate_limit:shop-send-receipt:"c1"', limit=100, period_seconds=3600.0
    )
    assert flow.idempotency == Bucket(
        key='idempotency:shop-send-receipt:"o1"', limit=1, period_seconds=86400.0
    )
    assert flow.singleton == ('singleton:shop-send-receipt:"c1"', "cancel")
    assert flow.gather == Gather(
        kind="debounce",
        key='debounce:shop-send-receipt:"c1"',
        delay_seconds=30.0,
        timeout_seconds=300.0,
    )
    assert flow.cancel_on == (
        NewListener(
            event_name="shop/order.refunded",
            expression=None,
            expires_at=NOW + timedelta(days=1),
            match_path="data.order_id",
            match_value='"o1"',
        ),
    )
    assert flow.start_by == NOW + timedelta(minutes=5)


def test_admission_plans_a_batch_and_reads_cron_triggers(
    synced: tuple[str, list[dict[str, Any]]],
) -> None:
    fn = {f.id: f for f in sdk_functions(synced[1])}["shop-nightly-report"]
    event = {"name": "shop/report.requested", "data": {"warehouse": "w9"}}
    flow = plan(fn.id, fn.config, event)
    assert flow.gather == Gather(
        kind="batch", key='batch:shop-nightly-report:"w9"', delay_seconds=10.0, max_size=50
    )
    cron_trigger, event_trigger = map(trigger_from_config, function_config(fn.config)["triggers"])
    assert isinstance(cron_trigger, CronTrigger)
    assert (cron_trigger.expression, cron_trigger.tz) == ("0 3 * * *", "Europe/Paris")
    # 03:00 in Paris (summer time) is 01:00 UTC
    assert cron_trigger.next_after(NOW) == datetime(2024, 6, 11, 1, 0, tzinfo=UTC)
    assert event_trigger == EventTrigger(name="shop/report.requested")


def test_admission_plans_a_js_function_with_bare_limit_and_cancel_if() -> None:
    cancel = {"event": "shop/x.stopped", "if": "event.data.n < async.data.n"}
    (fn,) = sdk_functions([js_function(concurrency=3, cancel=[cancel])])
    flow = plan(fn.id, fn.config, {"name": "shop/x", "data": {"n": 1}})
    assert flow.slots == (Slot(key="concurrency:shop-x", limit=3),)
    assert flow.cancel_on == (
        NewListener(
            event_name="shop/x.stopped",
            expression="event.data.n < async.data.n",
            expires_at=NOW + timedelta(days=365),
        ),
    )
    assert flow.throttle is None and flow.gather is None and flow.start_by is None


# -- JS-shaped configs (protocol §5.6, §5.8) ---------------------------------------------------


def test_js_example_of_the_protocol_note() -> None:
    raw = {
        "id": "shop-sync-inventory",
        "name": "Sync inventory",
        "triggers": [
            {"event": "shop/product.updated"},
            {"cron": "TZ=Europe/Paris 0 */6 * * *", "jitter": "30s"},
        ],
        "steps": steps(
            id="step",
            name="step",
            runtime={"type": "http", "url": URL},
            retries={"attempts": 3},
        ),
        "concurrency": [{"limit": 10}, {"limit": 1, "key": "event.data.sku", "scope": "fn"}],
        "throttle": {"limit": 20, "period": "1m", "burst": 5},
        "rateLimit": {"limit": 1, "period": "10s", "key": "event.data.sku"},
        "debounce": {"period": "5s", "key": "event.data.sku", "timeout": "1m"},
        "cancel": [
            {
                "event": "shop/product.deleted",
                "if": "event.data.sku == async.data.sku",
                "timeout": "1d",
            }
        ],
        "priority": {"run": "event.data.vip ? 120 : 0"},
        "idempotency": "event.data.sku + '-' + event.data.version",
        "singleton": {"mode": "skip", "key": "event.data.sku"},
        "timeouts": {"start": "10m", "finish": "2h"},
    }
    (fn,) = sdk_functions([raw])
    assert (fn.id, fn.name) == ("shop-sync-inventory", "Sync inventory")
    sku = "event.data.sku"
    assert json.loads(fn.config) == {
        "triggers": [
            {"event": "shop/product.updated"},
            {"cron": "0 */6 * * *", "tz": "Europe/Paris", "missed": "latest", "jitter_seconds": 30},
        ],
        "retries": 3,
        "timeout_seconds": 7200.0,
        "start_timeout_seconds": 600.0,
        "concurrency": [
            {"limit": 10, "key": None, "scope": "function"},
            {"limit": 1, "key": sku, "scope": "function"},
        ],
        "throttle": {"limit": 20, "period_seconds": 60.0, "burst": 5, "key": None},
        "rate_limit": {"limit": 1, "period_seconds": 10.0, "key": sku},
        "debounce": {"period_seconds": 5.0, "key": sku, "timeout_seconds": 60.0},
        "cancel_on": [
            {
                "event": "shop/product.deleted",
                "if": "event.data.sku == async.data.sku",
                "timeout_seconds": 86400.0,
            }
        ],
        "priority": {"run": "event.data.vip ? 120 : 0"},
        "idempotency": "event.data.sku + '-' + event.data.version",
        "singleton": {"key": sku, "mode": "skip"},
        "url": URL,
    }


def test_js_composed_durations() -> None:
    (fn,) = sdk_functions(
        [
            js_function(
                throttle={"limit": 2, "period": "1h30m"},
                debounce={"period": "1m30s", "timeout": "1d2h"},
                cancel=[{"event": "shop/x.stopped", "timeout": "1w"}],
                timeouts={"start": "90s", "finish": "1.5h"},
            )
        ]
    )
    config = json.loads(fn.config)
    assert config["throttle"]["period_seconds"] == 5400.0
    assert config["debounce"] == {"period_seconds": 90.0, "key": None, "timeout_seconds": 93600.0}
    assert config["cancel_on"][0]["timeout_seconds"] == 604800.0
    assert (config["start_timeout_seconds"], config["timeout_seconds"]) == (90.0, 5400.0)


@pytest.mark.parametrize(
    ("concurrency", "stored"),
    [
        (5, [{"limit": 5, "key": None, "scope": "function"}]),
        (
            {"limit": 2, "key": "event.data.a"},
            [{"limit": 2, "key": "event.data.a", "scope": "function"}],
        ),
        (
            [{"limit": 3, "key": "event.data.a", "scope": "account"}],
            [{"limit": 3, "key": "event.data.a", "scope": "all"}],
        ),
        ([{"limit": 0}, {"limit": 4}], [{"limit": 4, "key": None, "scope": "function"}]),
    ],
)
def test_js_concurrency_shapes(concurrency: Any, stored: list[dict[str, Any]]) -> None:
    (fn,) = sdk_functions([js_function(concurrency=concurrency)])
    assert json.loads(fn.config)["concurrency"] == stored


@pytest.mark.parametrize("concurrency", [0, {"limit": 0}, [], [{"limit": 0}]])
def test_js_concurrency_of_zero_means_no_limit(concurrency: Any) -> None:
    (fn,) = sdk_functions([js_function(concurrency=concurrency)])
    assert "concurrency" not in json.loads(fn.config)


def test_js_failure_handler_and_system_names_in_cancel() -> None:
    handler = js_function(
        id="shop-x-failure",
        triggers=[
            {"event": "inngest/function.failed", "expression": "event.data.function_id == 'shop-x'"}
        ],
        steps=steps(runtime={"type": "http", "url": URL}, retries={"attempts": 1}),
    )
    main = js_function(
        cancel=[{"event": "inngest/function.cancelled", "if": "event.id == async.id"}]
    )
    stored = configs(sdk_functions([main, handler]))
    assert stored["shop-x-failure"]["triggers"][0]["event"] == FAILED_EVENT
    assert stored["shop-x-failure"]["retries"] == 1
    assert stored["shop-x"]["cancel_on"][0]["event"] == CANCELLED_EVENT


def test_js_batch() -> None:
    batch = {"maxSize": 100, "timeout": "5s", "key": "event.data.warehouse"}
    (fn,) = sdk_functions([js_function(batchEvents=batch)])
    assert json.loads(fn.config)["batch_events"] == {
        "max_size": 100,
        "timeout_seconds": 5.0,
        "key": "event.data.warehouse",
    }


@pytest.mark.parametrize("triggers", [[], None])
def test_invoke_only_function_has_no_triggers(triggers: Any) -> None:
    (fn,) = sdk_functions([js_function(triggers=triggers)])
    assert json.loads(fn.config)["triggers"] == []


@pytest.mark.parametrize(
    ("cron", "tz", "expression"),
    [
        ("0 */6 * * *", "UTC", "0 */6 * * *"),
        ("CRON_TZ=Asia/Tokyo 30 9 * * 1-5", "Asia/Tokyo", "30 9 * * 1-5"),
        ("  TZ=America/New_York   0  0 1 * *  ", "America/New_York", "0 0 1 * *"),
    ],
)
def test_cron_zone_prefixes(cron: str, tz: str, expression: str) -> None:
    (fn,) = sdk_functions([js_function(triggers=[{"cron": cron}])])
    (trigger,) = json.loads(fn.config)["triggers"]
    assert trigger == {"cron": expression, "tz": tz, "missed": "latest"}


def test_retries_come_from_the_step_then_the_function_then_the_default() -> None:
    url = {"type": "http", "url": URL}
    step_wins = js_function(retries=7, steps=steps(runtime=url, retries={"attempts": 1}))
    function_level = js_function(id="shop-y", retries=7, steps=steps(runtime=url))
    attempts_null = js_function(id="shop-z", steps=steps(runtime=url, retries={"attempts": None}))
    clamped = js_function(id="shop-w", steps=steps(runtime=url, retries={"attempts": 21}))
    stored = configs(sdk_functions([step_wins, function_level, attempts_null, clamped]))
    retries = {fid: config["retries"] for fid, config in stored.items()}
    assert retries == {"shop-x": 1, "shop-y": 7, "shop-z": 4, "shop-w": 20}


def test_nulls_are_absent_and_unknown_keys_ignored() -> None:
    plain = sdk_functions([js_function()])
    nulls = {
        key: None
        for key in (
            "name",
            "concurrency",
            "throttle",
            "rateLimit",
            "debounce",
            "batchEvents",
            "cancel",
            "priority",
            "idempotency",
            "singleton",
            "timeouts",
            "retries",
        )
    }
    with_nulls = sdk_functions([js_function(**nulls)])
    with_extras = sdk_functions(
        [
            js_function(
                optimizeParallelism=True,
                steps=steps(id="step", runtime={"type": "http", "url": URL, "v": 2}, extra=1),
                throttle={"limit": 2, "period": "1m", "key": None, "future": "x"},
            )
        ]
    )
    assert with_nulls[0].config == plain[0].config
    assert with_nulls[0].name == "shop-x"  # a missing name is the id
    extras = json.loads(with_extras[0].config)
    assert extras.pop("throttle") == {"limit": 2, "period_seconds": 60.0, "burst": 1, "key": None}
    assert extras == json.loads(plain[0].config)


def test_no_functions() -> None:
    assert sdk_functions([]) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("3d", 259200),
        ("1w", 604800),
        ("1h30m15s", 5415),
        ("1.5h", 5400),
        ("2d12h", 216000),
        (".5s", 0.5),
        ("1500ms", 1.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("2000000ns", 0.002),
        ("0s", 0),
    ],
)
def test_wire_durations(text: str, seconds: float) -> None:
    assert wire.duration(text, "f") == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", [30, 1.5, "30", "1 h", "-1s", "1y", "h", "", "1h 30m", True])
def test_wire_durations_refused(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        wire.duration(value, "debounce.period")
    assert caught.value.field == "debounce.period"
    assert f"{value!r} is not a duration" in caught.value.reason


# -- bad input -------------------------------------------------------------------------------

RUNTIME = {"type": "http", "url": URL}
BAD: list[tuple[dict[str, Any], str, str]] = [
    # function
    ({"name": 5}, "name", "expected a display name (a string), not 5"),
    ({"steps": None}, "steps", "is required: an object"),
    ({"steps": {"first": {"runtime": RUNTIME}}}, "steps.step", "is required: an object"),
    ({"steps": steps(id="step")}, "steps.step.runtime", "is required: an object"),
    (
        {"steps": steps(runtime={"type": "ws", "url": "wss://x/"})},
        "steps.step.runtime.type",
        "Connect (WebSocket) functions are not supported",
    ),
    (
        {"steps": steps(runtime={"type": "grpc", "url": URL})},
        "steps.step.runtime.type",
        "must be 'http', not 'grpc'",
    ),
    ({"steps": steps(runtime={"type": "http"})}, "steps.step.runtime.url", "is required: a URL"),
    (
        {"steps": steps(runtime={"type": "http", "url": "ftp://x/y"})},
        "steps.step.runtime.url",
        "must be an http(s) URL, not 'ftp://x/y'",
    ),
    (
        {"steps": steps(runtime={"type": "http", "url": "http://[::1"})},
        "steps.step.runtime.url",
        "must be an http(s) URL",
    ),
    (
        {"steps": steps(runtime=RUNTIME, retries={"attempts": -1})},
        "steps.step.retries.attempts",
        "must be a whole number of retries (0 or more), not -1",
    ),
    (
        {"steps": steps(runtime=RUNTIME, retries={"attempts": "3"})},
        "steps.step.retries.attempts",
        "not '3'",
    ),
    (
        {"steps": steps(runtime=RUNTIME, retries={"attempts": True})},
        "steps.step.retries.attempts",
        "not True",
    ),
    (
        {"steps": steps(runtime=RUNTIME, retries=3)},
        "steps.step.retries",
        "expected an object, not 3",
    ),
    ({"retries": -2}, "retries", "must be a whole number of retries (0 or more), not -2"),
    # triggers
    ({"triggers": "shop/x"}, "triggers", "expected a list of triggers, not 'shop/x'"),
    (
        {"triggers": [{"event": f"shop/{i}"} for i in range(11)]},
        "triggers",
        "at most 10 triggers, not 11",
    ),
    (
        {"triggers": [{"event": "a"}, {"event": "b"}, {"event": "a"}]},
        "triggers[2]",
        "repeats triggers[0]",
    ),
    ({"triggers": ["shop/x"]}, "triggers[0]", "expected an object, not 'shop/x'"),
    (
        {"triggers": [{"expression": "event.data.a > 1"}]},
        "triggers[0]",
        'expected exactly one of "event" and "cron"',
    ),
    (
        {"triggers": [{"event": "a", "cron": "* * * * *"}]},
        "triggers[0]",
        'expected exactly one of "event" and "cron"',
    ),
    ({"triggers": [{"event": 5}]}, "triggers[0].event", "expected an event name (a string), not 5"),
    (
        {"triggers": [{"event": "shop x"}]},
        "triggers[0].event",
        "must be 1-512 characters without spaces",
    ),
    (
        {"triggers": [{"event": "a", "expression": 7}]},
        "triggers[0].expression",
        "expected a CEL expression (a string), not 7",
    ),
    (
        {"triggers": [{"event": "a", "expression": "event.data.a >"}]},
        "triggers[0].expression",
        "invalid CEL expression 'event.data.a >'",
    ),
    (
        {"triggers": [{"event": "a", "expression": "async.data.a == 1"}]},
        "triggers[0].expression",
        "uses 'async', which is not defined",
    ),
    (
        {"triggers": [{"cron": 5}]},
        "triggers[0].cron",
        "expected a cron expression (a string), not 5",
    ),
    (
        {"triggers": [{"cron": "TZ=" + "A" * 246 + " 0 * * * *"}]},
        "triggers[0].cron",
        "must be at most 255 characters, not 259",
    ),
    (
        {"triggers": [{"cron": "TZ=Mars/Olympus 0 * * * *"}]},
        "triggers[0].cron",
        "unknown time zone 'Mars/Olympus'",
    ),
    (
        {"triggers": [{"cron": "0 * * *"}]},
        "triggers[0].cron",
        "expected five fields (minute hour day month weekday), got 4",
    ),
    (
        {"triggers": [{"cron": "0 0 * * * *"}]},
        "triggers[0].cron",
        "expected five fields (minute hour day month weekday), got 6",
    ),
    ({"triggers": [{"cron": "61 * * * *"}]}, "triggers[0].cron", "minute"),
    (
        {"triggers": [{"cron": "0 * * * *", "jitter": "10m"}]},
        "triggers[0].jitter",
        "must be at most 5m, not 10m",
    ),
    (
        {"triggers": [{"cron": "0 * * * *", "jitter": 30}]},
        "triggers[0].jitter",
        "30 is not a duration",
    ),
    # concurrency
    (
        {"concurrency": "5"},
        "concurrency",
        "expected a limit, an object {limit, key?, scope?} or a list of them, not '5'",
    ),
    ({"concurrency": [5]}, "concurrency[0]", "expected an object, not 5"),
    ({"concurrency": {"key": "event.data.a"}}, "concurrency.limit", "is required: an integer"),
    ({"concurrency": -1}, "concurrency.limit", "must be an integer from 1 to 100000, not -1"),
    (
        {"concurrency": {"limit": 100_001}},
        "concurrency.limit",
        "must be an integer from 1 to 100000, not 100001",
    ),
    (
        {"concurrency": [{"limit": 0}, {"limit": 2, "key": "event.data.a b"}]},
        "concurrency[1].key",
        "invalid CEL expression 'event.data.a b'",
    ),
    (
        {"concurrency": [{"limit": 1, "key": 5}]},
        "concurrency[0].key",
        "expected a CEL expression (a string), not 5",
    ),
    (
        {"concurrency": [{"limit": 1, "scope": "global"}]},
        "concurrency[0].scope",
        "must be 'fn', 'env' or 'account', not 'global'",
    ),
    (
        {"concurrency": [{"limit": 1}, {"limit": 2}, {"limit": 3}]},
        "concurrency",
        "at most 2 limits, not 3",
    ),
    # throttle, rateLimit, debounce
    ({"throttle": 5}, "throttle", "expected an object, not 5"),
    ({"throttle": {"period": "1m"}}, "throttle.limit", "is required: an integer"),
    (
        {"throttle": {"limit": 1}},
        "throttle.period",
        'is required: a duration such as "30s" or "1m"',
    ),
    ({"throttle": {"limit": 1, "period": 60}}, "throttle.period", "60 is not a duration"),
    (
        {"throttle": {"limit": 1, "period": "0s"}},
        "throttle.period",
        "must be from 1s to 604800s, not 0s",
    ),
    (
        {"throttle": {"limit": 2, "period": "1m", "burst": 3}},
        "throttle.burst",
        "must be an integer from 1 to limit (2), not 3",
    ),
    (
        {"throttle": {"limit": 2, "period": "1m", "key": "async.data.a"}},
        "throttle.key",
        "uses 'async', which is not defined",
    ),
    (
        {"rateLimit": {"limit": 1, "period": "2d"}},
        "rateLimit.period",
        "must be from 1s to 86400s, not 172800s",
    ),
    (
        {"rateLimit": {"limit": "1", "period": "1h"}},
        "rateLimit.limit",
        "must be an integer from 1 to 100000, not '1'",
    ),
    (
        {"debounce": {"period": "1m", "timeout": "30s"}},
        "debounce.timeout",
        "must be from 60s to 604800s, not 30s",
    ),
    ({"debounce": {"period": "1x"}}, "debounce.period", "'1x' is not a duration"),
    # batchEvents
    (
        {"batchEvents": {"maxSize": 10, "timeout": "5s", "if": "event.data.a > 1"}},
        "batchEvents.if",
        "conditional batching is not supported",
    ),
    (
        {"batchEvents": {"maxSize": 0, "timeout": "5s"}},
        "batchEvents.maxSize",
        "must be an integer from 1 to 10000, not 0",
    ),
    ({"batchEvents": {"maxSize": 10}}, "batchEvents.timeout", "is required: a duration"),
    (
        {"batchEvents": {"maxSize": 10, "timeout": "2h"}},
        "batchEvents.timeout",
        "must be from 1s to 3600s, not 7200s",
    ),
    (
        {
            "batchEvents": {"maxSize": 10, "timeout": "5s"},
            "rateLimit": {"limit": 1, "period": "1h"},
            "idempotency": "event.id",
        },
        "batchEvents",
        "cannot be combined with rateLimit, idempotency",
    ),
    # cancel
    ({"cancel": {"event": "a"}}, "cancel", "expected a list of objects {event, if?, timeout?}"),
    ({"cancel": ["a"]}, "cancel[0]", "expected an object, not 'a'"),
    ({"cancel": [{"if": "event.id == async.id"}]}, "cancel[0].event", "is required: an event name"),
    ({"cancel": [{"event": "a b"}]}, "cancel[0].event", "must be 1-512 characters without spaces"),
    (
        {"cancel": [{"event": "a", "if": "event.data.a =="}]},
        "cancel[0].if",
        "invalid CEL expression 'event.data.a =='",
    ),
    (
        {"cancel": [{"event": "a", "if": "other.a == 1"}]},
        "cancel[0].if",
        "uses 'other', which is not defined",
    ),
    (
        {"cancel": [{"event": "a"}, {"event": "b", "timeout": "2024-06-10T12:00:00Z"}]},
        "cancel[1].timeout",
        "an absolute time ('2024-06-10T12:00:00Z') is not supported",
    ),
    (
        {"cancel": [{"event": "a", "timeout": "400d"}]},
        "cancel[0].timeout",
        "must be from 1s to 31536000s, not 34560000s",
    ),
    # priority, idempotency, singleton, timeouts
    ({"priority": "event.data.a"}, "priority", "expected an object, not 'event.data.a'"),
    ({"priority": {}}, "priority.run", "is required: a CEL expression"),
    (
        {"priority": {"run": "event.data.a +"}},
        "priority.run",
        "invalid CEL expression 'event.data.a +'",
    ),
    ({"idempotency": 5}, "idempotency", "expected a CEL expression (a string), not 5"),
    ({"idempotency": "event.data.a =="}, "idempotency", "invalid CEL expression"),
    ({"singleton": {"key": "event.data.a"}}, "singleton.mode", "is required: 'skip' or 'cancel'"),
    ({"singleton": {"mode": "queue"}}, "singleton.mode", "must be 'skip' or 'cancel', not 'queue'"),
    ({"timeouts": "1h"}, "timeouts", "expected an object, not '1h'"),
    ({"timeouts": {"start": "0s"}}, "timeouts.start", "must be from 1s to 31536000s, not 0s"),
    ({"timeouts": {"finish": 30}}, "timeouts.finish", "30 is not a duration"),
]


@pytest.mark.parametrize(("changes", "field", "reason"), BAD, ids=[c[1] for c in BAD])
def test_bad_function_config(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sdk_functions([js_function(**changes)])
    assert caught.value.field == PREFIX + field
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("functions", "field", "reason"),
    [
        ({"id": "shop-x"}, "functions", "expected a list of function configs"),
        ([5], "functions[0]", "expected an object, not 5"),
        (
            [js_function(id=None)],
            "functions[0].id",
            "must be 1-255 characters without spaces or control characters, not None",
        ),
        ([js_function(id="")], "functions[0].id", "not ''"),
        ([js_function(id="shop x")], "functions[0].id", "not 'shop x'"),
        ([js_function(id="shop\x07")], "functions[0].id", "not 'shop\\x07'"),
        ([js_function(id="s" * 256)], "functions[0].id", "must be 1-255 characters"),
        (
            [js_function(), js_function(name="Other")],
            "functions[1] (id 'shop-x')",
            "repeats the id of functions[0]",
        ),
        (
            [js_function(), js_function(id="shop-y", rateLimit={"limit": 1, "period": "0s"})],
            "functions[1] (id 'shop-y').rateLimit.period",
            "must be from 1s to 86400s, not 0s",
        ),
    ],
)
def test_bad_function_list(functions: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sdk_functions(functions)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_long_ids_up_to_the_limit_are_fine() -> None:
    (fn,) = sdk_functions([js_function(id="s" * 255)])
    assert fn.id == "s" * 255


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(InvalidInput) as caught:
        sdk_functions({"functions": [js_function()] * 50})
    assert caught.value.reason.startswith("expected a list of function configs, not {'functions'")
    assert caught.value.reason.endswith("...")
    assert len(caught.value.reason) < 120
