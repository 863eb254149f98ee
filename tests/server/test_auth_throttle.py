"""Guessing the API token is throttled per client address; people who know it are not.

Clients are told apart by their loopback source address (127.0.0.1, 127.0.0.2, ...), and time
is a clock the test moves, so the window passes without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request

import stepline
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from stepline.server.throttle import (
    MAX_FAILURES,
    FailureLimiter,
    TooManyFailures,
    client_address,
)
from tests.server.conftest import Served

pytestmark = pytest.mark.timeout(20)

TOKEN = "the-right-token-0123456789"
WINDOW = 60.0
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _app() -> stepline.App:
    app = stepline.App("throttle-test")

    @app.function(id="echo", triggers=[stepline.event("throttle/echo")])
    def echo(ctx: Any) -> Any:
        return ctx.event["data"]

    return app


@pytest.fixture
def limiter_clock() -> Clock:
    return Clock()


@pytest.fixture
def served(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], limiter_clock: Clock
) -> Served:
    limiter = FailureLimiter(window_seconds=WINDOW, clock=limiter_clock)
    return serve(make_engine(_app()), AuthSettings(api_token=TOKEN, limiter=limiter))


@pytest.fixture
def client_from() -> Iterator[Callable[[Served, str], httpx.Client]]:
    """HTTP clients bound to a given loopback source address; closed afterwards."""
    clients: list[httpx.Client] = []

    def make(served: Served, address: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        client = httpx.Client(base_url=served.url, transport=transport, timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_wrong_bearer_tokens_are_throttled_per_address(
    served: Served, limiter_clock: Clock, client_from: Callable[[Served, str], httpx.Client]
) -> None:
    guesser, colleague = client_from(served, "127.0.0.2"), client_from(served, "127.0.0.3")
    for guess in range(MAX_FAILURES):
        assert guesser.get("/v1/runs", headers=_bearer(f"guess-{guess}")).status_code == 401

    throttled = guesser.get("/v1/runs", headers=_bearer("guess-again"))
    assert throttled.status_code == 429
    assert throttled.json()["status"] == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= WINDOW
    # While throttled, even the right token is not checked: guessing learns nothing.
    assert guesser.get("/v1/runs", headers=_bearer(TOKEN)).status_code == 429
    # Another address that knows the token is not affected, however often it calls.
    for _ in range(3 * MAX_FAILURES):
        assert colleague.get("/v1/runs", headers=_bearer(TOKEN)).status_code == 200
    # Requests without a token are not guesses: they get the usual 401.
    assert guesser.get("/v1/runs").status_code == 401

    limiter_clock.now += WINDOW
    assert guesser.get("/v1/runs", headers=_bearer(TOKEN)).status_code == 200


def test_the_sign_in_form_and_cookies_are_throttled(
    served: Served, limiter_clock: Clock, client_from: Callable[[Served, str], httpx.Client]
) -> None:
    guesser = client_from(served, "127.0.0.4")
    origin = {**FORM, "origin": served.url}
    for guess in range(MAX_FAILURES - 1):
        wrong = guesser.post("/login", data={"token": f"guess-{guess}"}, headers=origin)
        assert wrong.status_code == 401
    # A forged cookie is a guess as well; the redirect to sign in drops it.
    forged = guesser.get("/runs", headers={"cookie": "stepline_token=cookie-guess"})
    assert forged.status_code == 303
    assert 'stepline_token=""' in forged.headers["set-cookie"]

    page = guesser.post("/login", data={"token": TOKEN}, headers=origin)
    assert page.status_code == 429
    assert "too many wrong tokens from your address" in page.text
    assert page.headers["retry-after"]
    assert guesser.get("/runs", headers=_bearer(TOKEN)).status_code == 429
    assert guesser.get("/runs/stream", headers=_bearer(TOKEN)).status_code == 429

    limiter_clock.now += WINDOW
    signed_in = guesser.post("/login", data={"token": TOKEN}, headers=origin)
    assert signed_in.status_code == 303


def test_the_limiter_forgets_old_failures_and_bounds_its_memory() -> None:
    clock = Clock()
    limiter = FailureLimiter(max_failures=2, window_seconds=10, max_addresses=3, clock=clock)
    limiter.failed("a")
    clock.now += 6
    limiter.failed("a")
    with pytest.raises(TooManyFailures) as raised:
        limiter.check("a")
    assert raised.value.retry_after == 4
    clock.now += 4  # the first failure left the window
    limiter.check("a")
    for address in ("b", "c", "d", "e"):
        limiter.failed(address)
        limiter.failed(address)
    limiter.check("b")  # forgotten: only the 3 most recent addresses are kept
    with pytest.raises(TooManyFailures):
        limiter.check("e")


def _request(host: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (host, 1)}
    )


def test_ipv6_clients_are_counted_per_64_network() -> None:
    assert client_address(_request("2001:db8:1:2::5")) == "2001:db8:1:2::/64"
    assert client_address(_request("2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert client_address(_request("192.0.2.7")) == "192.0.2.7"
