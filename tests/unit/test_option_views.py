"""A function's options in words, as the API, dashboard and CLI show them: periods read as
they are written ("1m", "1h30m"), and options without a key, condition or limit say no more."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import stepline
from stepline._durations import parse_duration, period_text
from stepline.engine.option_views import option_summaries, options_view


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (1, "1s"),
        (2.5, "2.5s"),
        (30, "30s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (7 * 86400, "7d"),
    ],
)
def test_periods_read_as_they_are_written(seconds: float, text: str) -> None:
    assert period_text(seconds) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


def _config(**options: object) -> dict[str, object]:
    app = stepline.App("words")
    fn = app.function(id="fn", **options)(lambda ctx: None)  # type: ignore[arg-type]
    config: dict[str, object] = json.loads(fn.config())
    return config


def test_options_without_keys_or_conditions_say_only_what_is_set() -> None:
    config = _config(
        concurrency=[
            stepline.Concurrency(limit=3),
            stepline.Concurrency(limit=10, key="event.data.account", scope="all"),
        ],
        throttle=stepline.Throttle(limit=5, period="90s", burst=2, key="event.data.customer"),
        singleton=stepline.Singleton(mode="cancel"),
        cancel_on=[stepline.CancelOn("order/cancelled"), stepline.CancelOn("order/x", timeout=30)],
        debounce=stepline.Debounce(period="2s"),
    )
    assert option_summaries(config) == [
        "concurrency 3",
        "concurrency 10 per event.data.account across functions",
        "throttle 5 per 1m30s per event.data.customer (burst 2)",
        "debounce 2s",
        "singleton: cancel",
        "cancel on order/cancelled",
        "cancel on order/x (30s)",
    ]


def test_a_function_without_options_has_none() -> None:
    config = _config(retries=2, timeout="10m")
    assert options_view(config) == {}
    assert option_summaries(config) == []
