"""Event intake's rate limit per event key over real HTTP, on both stores: a key past its burst
gets 429 with Retry-After and nothing is stored; another key is not affected; `stepline
server --intake-rate-limit` refuses a value that is not a rate, naming the option."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import stepline
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from stepline.server.rate_limit import IntakeLimit, KeyBuckets
from tests.server.conftest import Served

SHOP_KEY, CI_KEY = "shop-key-0123456789abcdef", "ci-key-0123456789abcdefgh"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_past_its_burst_gets_429_with_retry_after_and_nothing_is_stored(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    clock = Clock()
    buckets = KeyBuckets(IntakeLimit(rate=0.5, burst=2), clock=clock)
    auth = AuthSettings(event_keys=(SHOP_KEY, CI_KEY), api_token="t" * 32, intake_limit=buckets)
    served = serve(make_engine(stepline.App("limits")), auth)
    event = {"name": "shop/order.placed", "data": {"n": 1}}

    sent = [served.http.post(f"/e/{SHOP_KEY}", json=event) for _ in range(3)]

    assert [r.status_code for r in sent] == [200, 200, 429]
    refused = sent[2]
    assert refused.headers["retry-after"] == "2"  # one token back at 0.5 a second
    assert refused.json()["ids"] == [] and "over its rate limit" in refused.json()["error"]
    assert SHOP_KEY not in refused.text, "the message never repeats the secret"
    assert len(served.engine.store.list_events(None, 10, None)) == 2, (
        "the refused one is not stored"
    )
    assert served.http.post(f"/e/{CI_KEY}", json=event).status_code == 200, "its own bucket"
    clock.now = 2.0
    assert served.http.post(f"/e/{SHOP_KEY}", json=event).status_code == 200


def test_the_server_refuses_a_limit_that_is_not_a_rate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stepline.cli.main", "server", "--db", "unused.db",
         "--intake-rate-limit", "fast"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--intake-rate-limit" in done.stderr and "is not a rate" in done.stderr
