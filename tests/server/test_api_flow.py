"""What the API and the dashboard say about flow control: why a run waits, what it started,
why it was skipped or cancelled, and "Run now" refused by a busy singleton."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.server import models
from stepline.store.base import FunctionRecord
from tests.engine.support import eventually, start
from tests.server.conftest import Served

EVENT = "report/requested"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    opened = threading.Event()
    yield opened
    opened.set()


def limited_app(gate: threading.Event) -> stepline.App:
    app = stepline.App("reports")

    @app.function(
        id="report",
        triggers=[stepline.event(EVENT)],
        concurrency=stepline.Concurrency(limit=1, key="event.data.customer"),
        singleton=stepline.Singleton(key="event.data.customer", mode="skip"),
    )
    def report(ctx: stepline.Context) -> str:
        return ctx.step.run("render", lambda: "done" if gate.wait(10) else "late")

    @app.function(id="parent", triggers=[stepline.event("parent/go")])
    def parent(ctx: stepline.Context) -> object:
        return ctx.step.invoke("child", function="child", data={"n": 1})

    @app.function(id="child")
    def child(ctx: stepline.Context) -> int:
        return int(ctx.event["data"]["n"]) + 1

    return app


def run_json(served: Served, run_id: str) -> dict[str, Any]:
    body = served.http.get(f"/v1/runs/{run_id}").json()
    models.RunDetailResponse.model_validate(body)
    data: dict[str, Any] = body["data"]
    return data


def test_a_run_held_back_by_a_full_key_says_so(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], gate: threading.Event
) -> None:
    app = limited_app(gate)

    @app.function(
        id="other",
        triggers=[stepline.event("other/go")],
        concurrency=stepline.Concurrency(limit=1, key="event.data.customer", scope="all"),
        timeouts=stepline.Timeouts(start="1h"),
    )
    def other(ctx: stepline.Context) -> str:
        return ctx.step.run("work", lambda: "done" if gate.wait(10) else "late")

    served = serve(make_engine(app))
    first = start(served.engine, "other/go", {"customer": "acme"})
    eventually(lambda: served.engine.worker.inflight == 1, what="the first run to hold the slot")
    second = start(served.engine, "other/go", {"customer": "acme"})

    waiting = eventually(
        lambda: run_json(served, second)["waiting_for"], what="the second run's reason"
    )

    assert waiting == 'waiting for concurrency slot: key="acme"'
    listed = served.http.get("/v1/runs", params={"function_id": "other"}).json()["data"]
    assert {r["id"]: r["waiting_for"] for r in listed}[second] == waiting
    assert run_json(served, first)["waiting_for"] is None
    page = served.http.get(f"/runs/{second}").text
    assert "waiting for concurrency slot: key=&#34;acme&#34;" in page
    assert "Start by" in page and "timeouts.start" in page


def test_run_now_on_a_busy_singleton_is_409_with_the_active_run(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], gate: threading.Event
) -> None:
    served = serve(make_engine(limited_app(gate)))
    first = start(served.engine, EVENT, {"customer": "acme"})

    refused = served.http.post("/v1/functions/report/invoke", json={"data": {"customer": "acme"}})

    assert refused.status_code == 409
    assert refused.json()["run_id"] == first
    assert first in refused.json()["error"]
    with (
        stepline.Client(served.url, event_key="k") as client,
        pytest.raises(stepline.errors.Conflict) as raised,
    ):
        client.invoke("report", {"customer": "acme"})
    assert raised.value.run_id == first
    [event_id] = served.engine.send({"name": EVENT, "data": {"customer": "acme"}})
    [skipped] = served.http.get(f"/v1/events/{event_id}/runs").json()["data"]
    assert (skipped["status"], skipped["detail"]) == ("SKIPPED", "SINGLETON")
    assert first in skipped["reason"]
    assert "SKIPPED" in served.http.get(f"/events/{event_id}").text


def test_parent_and_invoked_child_link_to_each_other(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], gate: threading.Event
) -> None:
    served = serve(make_engine(limited_app(gate)))
    parent = start(served.engine, "parent/go")
    assert served.engine.wait_for_run(parent, 10).output == "2"

    children = run_json(served, parent)["children"]

    assert isinstance(children, list)
    [child] = children
    assert (child["function_id"], child["kind"], child["status"]) == (
        "child",
        "invoke",
        "COMPLETED",
    )
    assert run_json(served, child["id"])["parent_run_id"] == parent
    page = served.http.get(f"/runs/{parent}").text
    assert f'href="/runs/{child["id"]}"' in page
    assert f'href="/runs/{parent}"' in served.http.get(f"/runs/{child['id']}").text


def test_a_queued_run_no_worker_serves_is_flagged(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], clock: FakeClock
) -> None:
    served = serve(make_engine(stepline.App("empty")))
    ghost = FunctionRecord(id="ghost", app_id="elsewhere", name="ghost", config='{"triggers": []}')
    served.engine.store.sync_functions("elsewhere", [ghost], clock.now())
    run_id = served.engine.invoke("ghost")
    assert run_json(served, run_id)["waiting_for"] is None, "not yet: a worker may be starting"

    clock.advance(timedelta(seconds=31))

    assert run_json(served, run_id)["waiting_for"] == "no live worker serves function 'ghost'"
