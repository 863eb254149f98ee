"""Flow-control options are checked when the function is declared: a bad value raises
`ConfigurationError` naming the function, the option and the field, and what was wrong."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import stepline
from stepline import errors

CEL_ERROR = "invalid CEL expression"

BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "throttle limit 0": (
        {"throttle": stepline.Throttle(limit=0, period="1m")},
        "throttle.limit: must be an integer from 1 to 100000, not 0",
    ),
    "throttle limit True": (
        {"throttle": stepline.Throttle(limit=True, period="1m")},
        "throttle.limit: must be an integer from 1 to 100000, not True",
    ),
    "throttle period 0s": (
        {"throttle": stepline.Throttle(limit=1, period="0s")},
        "throttle.period: must be from 1s to 604800s, not 0s",
    ),
    "throttle burst over limit": (
        {"throttle": stepline.Throttle(limit=2, period="1m", burst=3)},
        "throttle.burst: must be an integer from 1 to limit (2), not 3",
    ),
    "concurrency key without event.": (
        {"concurrency": stepline.Concurrency(limit=1, key="data.customer")},
        "concurrency[0].key: CEL expression 'data.customer' uses 'data', which is not defined: "
        "it can use 'event' (e.g. event.data.customer)",
    ),
    "cancel_on condition with an unknown variable": (
        {"cancel_on": stepline.CancelOn("x/y", if_="evt.data.id == async.data.id")},
        "cancel_on[0].if_: CEL expression 'evt.data.id == async.data.id' uses 'evt', which is "
        "not defined: it can use 'event' and 'async' (e.g. event.data.customer)",
    ),
    "priority with an unknown variable": (
        {"priority": stepline.Priority(run="plan == 'vip' ? 60 : 0")},
        "priority.run: CEL expression \"plan == 'vip' ? 60 : 0\" uses 'plan', which is not "
        "defined: it can use 'event' (e.g. event.data.customer)",
    ),
    "throttle empty key": (
        {"throttle": stepline.Throttle(limit=1, period="1m", key=" ")},
        "throttle.key: expected a non-empty CEL expression",
    ),
    "rate limit period banana": (
        {"rate_limit": stepline.RateLimit(limit=1, period="banana")},
        'rate_limit.period: \'banana\' is not a duration; write e.g. "30s", "10m" or "1h30m"',
    ),
    "rate limit period over a day": (
        {"rate_limit": stepline.RateLimit(limit=1, period="2d")},
        "rate_limit.period: must be from 1s to 86400s, not 172800s",
    ),
    "debounce timeout under its period": (
        {"debounce": stepline.Debounce(period="10s", timeout="5s")},
        "debounce.timeout: must be from 10s to 604800s, not 5s",
    ),
    "batch size 0": (
        {"batch_events": stepline.Batch(max_size=0, timeout="5s")},
        "batch_events.max_size: must be an integer from 1 to 10000, not 0",
    ),
    "batch timeout over an hour": (
        {"batch_events": stepline.Batch(max_size=10, timeout="2h")},
        "batch_events.timeout: must be from 1s to 3600s, not 7200s",
    ),
    "batch with debounce": (
        {
            "batch_events": stepline.Batch(max_size=10, timeout="5s"),
            "debounce": stepline.Debounce(period="5s"),
        },
        "batch_events: cannot be combined with debounce",
    ),
    "batch with rate limit and singleton": (
        {
            "batch_events": stepline.Batch(max_size=10, timeout="5s"),
            "rate_limit": stepline.RateLimit(limit=1, period="1m"),
            "singleton": stepline.Singleton(),
        },
        "batch_events: cannot be combined with rate_limit, singleton",
    ),
    "singleton mode x": (
        {"singleton": stepline.Singleton(mode="x")},  # type: ignore[arg-type]
        "singleton.mode: must be 'skip' or 'cancel', not 'x'",
    ),
    "three concurrency limits": (
        {"concurrency": [stepline.Concurrency(limit=1, key=f"event.data.k{i}") for i in range(3)]},
        "concurrency: at most 2 limits, not 3",
    ),
    "concurrency 0": ({"concurrency": 0}, "concurrency[0].limit: must be an integer from 1"),
    "concurrency scope x": (
        {"concurrency": stepline.Concurrency(limit=1, scope="x")},  # type: ignore[arg-type]
        "concurrency[0].scope: must be 'function' or 'all', not 'x'",
    ),
    "cancel_on match with a space": (
        {"cancel_on": stepline.CancelOn("flow/stop", match="a b")},
        "cancel_on[0].match: 'a b' is not a field path like 'data.order_id'",
    ),
    "cancel_on match and if_": (
        {"cancel_on": [stepline.CancelOn("flow/stop", match="data.id", if_="true")]},
        "cancel_on[0].match: give either match or if_, not both",
    ),
    "cancel_on event with a space": (
        {"cancel_on": stepline.CancelOn("flow stop")},
        "cancel_on[0].event: must be 1-512 characters without spaces",
    ),
    "timeout and timeouts.finish": (
        {"timeout": "1m", "timeouts": stepline.Timeouts(finish="2m")},
        "timeout: give timeout or timeouts.finish, not both",
    ),
    "timeouts.start 0s": (
        {"timeouts": stepline.Timeouts(start="0s")},
        "timeouts.start: must be from 1s to 31536000s, not 0s",
    ),
    "timeouts.finish over a year": (
        {"timeouts": stepline.Timeouts(finish="400d")},
        "timeouts.finish: must be from 1s to 31536000s, not 34560000s",
    ),
    "a RateLimit given as throttle": (
        {"throttle": stepline.RateLimit(limit=1, period="1m")},
        "throttle: expected stepline.Throttle(...), not RateLimit(",
    ),
    "bad CEL: debounce key": (
        {"debounce": stepline.Debounce(period="1s", key="event.data.")},
        f"debounce.key: {CEL_ERROR} 'event.data.'",
    ),
    "bad CEL: idempotency": (
        {"idempotency": "event.data.(("},
        f"idempotency: {CEL_ERROR} 'event.data.(('",
    ),
    "bad CEL: priority": (
        {"priority": stepline.Priority(run="1 +")},
        f"priority.run: {CEL_ERROR} '1 +'",
    ),
    "bad CEL: concurrency key": (
        {"concurrency": [stepline.Concurrency(limit=1), stepline.Concurrency(limit=2, key="[")]},
        f"concurrency[1].key: {CEL_ERROR} '['",
    ),
    "bad CEL: cancel_on if_": (
        {"cancel_on": stepline.CancelOn("flow/stop", if_="async.data.id ==")},
        f"cancel_on[0].if_: {CEL_ERROR} 'async.data.id =='",
    ),
    "cancel_on if_ never boolean": (
        {"cancel_on": stepline.CancelOn("flow/stop", if_="1 + 2")},
        "cancel_on[0].if_: CEL condition '1 + 2' can never be true or false",
    ),
}


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_a_bad_option_is_refused_at_declaration_naming_function_option_and_field(
    options: dict[str, Any], message: str
) -> None:
    app = stepline.App("flow")

    with pytest.raises(errors.ConfigurationError) as refused:
        app.function(id="guarded", triggers=[stepline.event("flow/go")], **options)

    assert str(refused.value).startswith(f"function 'guarded': {message}"), refused.value
    assert app.functions == {}


def test_good_options_are_accepted_and_recorded() -> None:
    app = stepline.App("flow")

    @app.function(
        id="guarded",
        triggers=[stepline.event("flow/go")],
        throttle=stepline.Throttle(limit=10, period="1m", burst=2, key="event.data.customer"),
        rate_limit=stepline.RateLimit(limit=1, period="1h"),
        priority=stepline.Priority(run="event.data.vip ? 120 : 0"),
        idempotency="event.data.order_id",
        singleton=stepline.Singleton(mode="cancel"),
        timeouts=stepline.Timeouts(start="5m", finish="30m"),
    )
    def guarded(ctx: stepline.Context) -> None:
        """Never run."""

    fn = app.functions["guarded"]
    assert fn.options == {
        "throttle": {"limit": 10, "period_seconds": 60.0, "burst": 2, "key": "event.data.customer"},
        "rate_limit": {"limit": 1, "period_seconds": 3600.0, "key": None},
        "priority": {"run": "event.data.vip ? 120 : 0"},
        "idempotency": "event.data.order_id",
        "singleton": {"key": None, "mode": "cancel"},
        "start_timeout_seconds": 300.0,
    }
    assert fn.timeout == timedelta(minutes=30)
