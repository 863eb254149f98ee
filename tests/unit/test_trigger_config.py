"""Triggers are checked when their function is declared: every error names the function, the
trigger and the option, and a condition that can never be true or false is refused."""

from __future__ import annotations

from typing import Any

import pytest

import stepline
from stepline import errors
from stepline._cel_result import non_boolean_reason
from stepline.sdk.triggers import Trigger


def declare(*triggers: Trigger) -> None:
    app = stepline.App("shop")

    @app.function(id="nightly", triggers=list(triggers))
    def nightly(ctx: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (stepline.cron("0 0 * * * *"), "trigger cron('0 0 * * * *'): expression: expected five"),
        (stepline.cron("0 0 * *"), "expression: expected five fields"),
        (stepline.cron("0 25 * * *"), "trigger cron('0 25 * * *'): expression:"),
        (stepline.cron("0 0 * * *", tz="Mars/Base"), "tz: unknown time zone 'Mars/Base'"),
        (stepline.cron("0 0 * * *", missed="all"), "missed: must be 'latest' or 'skip'"),  # type: ignore[arg-type]
        (stepline.event("has space"), "trigger event('has space'): name: must be 1-512"),
        (stepline.event("shop/order", if_="event.data.x +"), "if_: invalid CEL expression"),
        (
            stepline.event("shop/order", if_="event.data.total + 1"),
            "trigger event('shop/order'): if_: CEL condition 'event.data.total + 1' can never "
            "be true or false: its outermost operation is '+'",
        ),
        (stepline.event("shop/order", if_="event.data.items.size()"), "result of size()"),
        (stepline.event("shop/order", if_="'north'"), "it is the literal 'north'"),
        (stepline.event("shop/order", if_="event.data.x ? 1 : 2"), "neither branch"),
        (
            stepline.event("shop/order", if_="data.region == 'north'"),
            "if_: CEL expression \"data.region == 'north'\" uses 'data', which is not defined",
        ),
    ],
)
def test_invalid_trigger_names_the_function_trigger_and_option(trigger: Any, expected: str) -> None:
    with pytest.raises(errors.ConfigurationError) as raised:
        declare(trigger)
    message = str(raised.value)
    assert message.startswith("function 'nightly': trigger "), message
    assert expected in message


@pytest.mark.parametrize(
    "condition",
    [
        "event.data.region == 'north'",
        "event.data.total / event.data.items > 100",
        "event.data.flag",
        "!event.data.flag",
        "has(event.data.x) && event.data.x > 1",
        "event.data.name.startsWith('a')",
        "event.data.vip ? event.data.total > 1 : event.data.total > 100",
        "event.data.region in ['north', 'south']",
        "(event.data.a + 1) == 2",
        "event.data.list[0]",
        "true",
    ],
)
def test_conditions_that_may_be_boolean_are_accepted(condition: str) -> None:
    declare(stepline.event("shop/order", if_=condition), stepline.cron("0 0 * * *", tz="UTC"))
    assert non_boolean_reason(condition) is None
