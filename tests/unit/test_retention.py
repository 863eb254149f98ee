"""Retention as people write it ("30d", "forever") and as a function declares it: stored in its
config, shown with the default when it has none, refused with the function and option named."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import stepline
from stepline import errors
from stepline._retention import parse_retention, retention_view


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("1m", timedelta(minutes=1)),
        (timedelta(weeks=2), timedelta(weeks=2)),
        (3600, timedelta(hours=1)),
        ("forever", None),
        (" Forever ", None),
        ("0", None),
        (0, None),
    ],
)
def test_retentions_people_write(value: str | int | timedelta, expected: timedelta | None) -> None:
    assert parse_retention(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30", '\'30\' is not a retention; write e.g. "30d", "12h" or "forever"'),
        ("soon", "'soon' is not a retention"),
        ("30s", "'30s' is 30s; a retention is at least 1m (or \"forever\")"),
        (-5, "-5 is not a retention"),
        (True, "True is not a retention"),
    ],
)
def test_bad_retentions_are_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        parse_retention(value, field="--retain")  # type: ignore[arg-type]  # bad on purpose

    assert caught.value.field == "--retain"
    assert message in str(caught.value)


def retention_app() -> stepline.App:
    """Functions keeping ended runs 7 days (`weekly`), forever (`kept`) and by default (`plain`)."""
    app = stepline.App("retention")

    @app.function(id="weekly", triggers=[stepline.event("r/weekly")], retention="7d")
    def weekly(ctx: stepline.Context) -> None:
        return None

    @app.function(id="kept", retention="forever")
    def kept(ctx: stepline.Context) -> None:
        return None

    @app.function(id="plain")
    def plain(ctx: stepline.Context) -> None:
        return None

    return app


def test_a_function_s_retention_is_in_its_config_and_shown_before_the_default() -> None:
    app = retention_app()
    configs = {fn_id: json.loads(fn.config()) for fn_id, fn in app.functions.items()}
    assert configs["weekly"]["retention_seconds"] == 7 * 86400
    assert configs["kept"]["retention_seconds"] == 0
    assert "retention_seconds" not in configs["plain"]
    default = timedelta(days=30)
    assert retention_view(configs["weekly"], default) == {
        "seconds": 604800.0,
        "text": "7d",
        "source": "function",
    }
    assert retention_view(configs["kept"], default)["text"] == "forever"
    assert retention_view(configs["plain"], default) == {
        "seconds": 2592000.0,
        "text": "30d",
        "source": "default",
    }
    assert retention_view(configs["plain"], None)["seconds"] is None


def test_a_bad_retention_names_the_function_and_the_option() -> None:
    app = stepline.App("retention")

    with pytest.raises(errors.ConfigurationError) as caught:
        app.function(id="hasty", retention="10s")

    assert str(caught.value) == (
        "function 'hasty': retention: '10s' is 10s; a retention is at least 1m (or \"forever\")"
    )
