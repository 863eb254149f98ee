"""Stepline serving Inngest SDK apps: a real server on loopback, real SDK apps beside it.

`stepline` starts an engine (worker, scheduler) with no Python apps on the test's store and
serves it on a free loopback port; `py_app` serves functions of the official Python SDK with
FastAPI on another port, their client pointed at that server, as a user configures an app.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from stepline.engine.clock import Clock, SystemClock
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.inngest.driver import HttpSettings
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.outputs import OutputLimits
from stepline.engine.retry import RetryPolicy
from stepline.engine.worker import WorkerSettings
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings
from stepline.store.base import RunRecord, Store
from tests.loopback import Servers

with warnings.catch_warnings():  # the SDK imports pydantic APIs deprecated in pydantic 2
    warnings.simplefilter("ignore")
    import fastapi
    import inngest
    import inngest.fast_api

SETTINGS = EngineSettings(
    worker=WorkerSettings(slots=8, lease_seconds=5.0, poll_seconds=0.05),
    retry=RetryPolicy(base_seconds=0.2, factor=2.0, cap_seconds=2.0, jitter=0.0),
    scheduler_poll_seconds=0.05,
)


def sync(app_url: str) -> None:
    """Ask the app to sync, as a deploy hook does: a plain PUT to its serve URL."""
    response = httpx.put(app_url, timeout=30)
    assert response.status_code == 200, response.text


@dataclass
class Stepline:
    """A running Stepline server and engine."""

    url: str
    engine: Engine
    http: httpx.Client

    def client(self, app_id: str, **kwargs: Any) -> inngest.Inngest:
        """An SDK client of app `app_id` pointed at this server (dev mode unless told)."""
        kwargs.setdefault("is_production", False)
        return inngest.Inngest(
            app_id=app_id, api_base_url=self.url, event_api_base_url=self.url, **kwargs
        )

    def sync(self, app_url: str) -> None:
        """Ask the app to sync, as a deploy hook does: a plain PUT to its serve URL."""
        sync(app_url)

    def send(self, name: str, data: dict[str, Any] | None = None) -> str:
        """Send one event through the Inngest intake; its id."""
        response = self.http.post("/e/test-key", json={"name": name, "data": data or {}})
        assert response.status_code == 200, response.text
        ids: list[str] = response.json()["ids"]
        return ids[0]

    def runs_of(self, event_id: str, count: int = 1, timeout: float = 20) -> list[RunRecord]:
        """The runs the event started, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.engine.operations.runs_for_event(event_id)
            if len(runs) >= count or time.monotonic() > deadline:
                return runs
            time.sleep(0.05)

    def ended(self, run_id: str, timeout: float = 30) -> RunRecord:
        """The run once it has ended."""
        return self.engine.wait_for_run(run_id, timeout_seconds=timeout)

    def run_of(self, event_id: str, timeout: float = 30) -> RunRecord:
        """The one run the event started, once it has ended."""
        runs = self.runs_of(event_id, timeout=timeout)
        assert len(runs) == 1, runs
        return self.ended(runs[0].id, timeout=timeout)


@pytest.fixture
def servers() -> Iterator[Servers]:
    """Start loopback servers; all stopped after the test."""
    running = Servers()
    yield running
    running.stop()


@pytest.fixture
def make_stepline(store: Store, servers: Servers) -> Iterator[Callable[..., Stepline]]:
    """Start a Stepline engine and server on the test's store (optional signing keys, clock)."""
    engines: list[Engine] = []
    clients: list[httpx.Client] = []

    def start(
        signing_key: str | None = None,
        clock: Clock | None = None,
        request_timeout: float = 60.0,
        outputs: OutputLimits | None = None,
    ) -> Stepline:
        keys = SigningKeys(signing_key) if signing_key else None
        settings = EngineSettings(
            worker=SETTINGS.worker,
            retry=SETTINGS.retry,
            scheduler_poll_seconds=SETTINGS.scheduler_poll_seconds,
            signing_keys=keys,
            http=HttpSettings(request_timeout_seconds=request_timeout),
            outputs=outputs or OutputLimits(),
        )
        clock = clock or SystemClock()
        engine = Engine([], db=store, upgrade=False, clock=clock, settings=settings)
        engines.append(engine.start())
        url = servers.start(create_app(engine.operations, AuthSettings(signing_keys=keys)))
        http = httpx.Client(base_url=url, timeout=30)
        clients.append(http)
        return Stepline(url=url, engine=engine, http=http)

    yield start
    for engine in engines:
        engine.worker.stop(grace_seconds=2)
        engine.scheduler.stop()
    for http in clients:
        http.close()


@pytest.fixture
def stepline(make_stepline: Callable[..., Stepline]) -> Stepline:
    """A Stepline server in dev mode (no keys)."""
    return make_stepline()


@pytest.fixture
def py_app(servers: Servers) -> Callable[..., str]:
    """Serve SDK functions with FastAPI on loopback; the serve URL (…/api/inngest)."""

    def serve(client: inngest.Inngest, functions: Sequence[Any], port: int | None = None) -> str:
        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, client, list(functions))
        return servers.start(app, port) + "/api/inngest"

    return serve


def pay_declined_once(client: inngest.Inngest) -> inngest.Function[str]:
    """`pay` (on `shop/pay`, one retry): its `charge` step is declined once, then pays."""
    lock = threading.Lock()
    tries = 0

    def declined_once() -> str:
        nonlocal tries
        with lock:
            tries += 1
            first = tries == 1
        if first:
            raise RuntimeError("declined once")
        return "paid"

    @client.create_function(fn_id="pay", trigger=inngest.TriggerEvent(event="shop/pay"), retries=1)
    def pay(ctx: inngest.ContextSync) -> str:
        return ctx.step.run("charge", declined_once)

    return pay
