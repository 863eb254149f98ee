"""Each function's retention, in the API's function JSON and on the dashboard's functions list
and function page: its own, or the default the engine was given (both stores)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from stepline.engine.engine import Engine
from stepline.engine.retention import RetentionSettings
from stepline.server import models
from tests.conftest import FAST_SETTINGS
from tests.server.conftest import Served
from tests.unit.test_retention import retention_app


def _served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    settings = replace(FAST_SETTINGS, retention=RetentionSettings(default=timedelta(days=14)))
    return serve(make_engine(retention_app(), settings=settings))


def test_the_api_gives_each_function_s_retention_and_where_it_comes_from(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = _served(make_engine, serve)

    listed = served.http.get("/v1/functions").json()
    models.FunctionList.model_validate(listed)
    retention = {f["id"]: f["retention"] for f in listed["data"]}

    assert retention == {
        "weekly": {"seconds": 604800.0, "text": "7d", "source": "function"},
        "kept": {"seconds": None, "text": "forever", "source": "function"},
        "plain": {"seconds": 1209600.0, "text": "14d", "source": "default"},
    }
    one = served.http.get("/v1/functions/plain").json()
    assert one["data"]["retention"]["text"] == "14d"


def test_the_dashboard_shows_each_function_s_retention(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = _served(make_engine, serve)

    listing = served.http.get("/functions").text
    page = served.http.get("/functions/weekly").text
    plain = served.http.get("/functions/plain").text

    assert '<dd class="retention">ended runs kept 7d</dd>' in listing
    assert '<dd class="retention">ended runs kept forever</dd>' in listing
    assert '<dd class="retention">ended runs kept 14d (default)</dd>' in listing
    assert '<dd id="function-retention">ended runs kept 7d</dd>' in page
    assert '<dd id="function-retention">ended runs kept 14d (default)</dd>' in plain
