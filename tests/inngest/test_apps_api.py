"""`GET /v1/apps` and `POST /v1/apps` against real inngest-py apps, and SDK functions in
`GET /v1/functions`: Python and SDK apps side by side, syncs out-of-band (dev mode) and
in-band (signed), and every way a sync by URL can fail, in words."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pytest

import stepline
from stepline import Client, errors
from stepline.engine.engine import Engine
from stepline.server import models
from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore
from tests.inngest.conftest import Stepline
from tests.inngest.node import NodeApp
from tests.loopback import Servers, free_port

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]
pytestmark = pytest.mark.timeout(30)
KEY = "signkey-test-" + "0123456789abcdef" * 4


def _functions(client: inngest.Inngest) -> list[Any]:
    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="apps/greet"))
    def greet(ctx: inngest.ContextSync) -> str:
        return "hello"

    @client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 0 * * *"))
    def nightly(ctx: inngest.ContextSync) -> None:
        return None

    return [greet, nightly]


def _python_app() -> stepline.App:
    app = stepline.App("py-shop")

    @app.function(id="py-echo", triggers=[stepline.event("apps/echo")])
    def echo(ctx: stepline.Context) -> None:
        return None

    return app


def _sync(server: Stepline, body: Any) -> tuple[int, dict[str, Any]]:
    response = server.http.post("/v1/apps", json=body)
    return response.status_code, response.json()


def test_a_synced_sdk_app_is_listed_beside_python_apps_with_its_functions(
    stepline: Stepline, py_app: Serve, make_engine: Callable[..., Engine]
) -> None:
    make_engine(_python_app())  # a Python app's engine on the same store
    url = py_app(stepline.client("shop"), _functions(stepline.client("shop")))

    status, body = _sync(stepline, {"url": url})

    assert status == 200, body
    app = models.AppResponse.model_validate(body).data
    assert (app.id, app.kind, app.url, app.framework) == ("shop", "sdk", url, "fast_api")
    assert app.sdk is not None and app.sdk.startswith("py:v")
    assert app.functions == ["shop-greet", "shop-nightly"]
    listed = stepline.http.get("/v1/apps").json()
    apps = {a.id: a for a in models.AppList.model_validate(listed).data}
    assert set(apps) == {"py-shop", "shop"}
    assert apps["shop"] == app
    python = apps["py-shop"]
    assert (python.kind, python.url, python.sdk, python.functions) == (
        "python",
        None,
        None,
        ["py-echo"],
    )
    functions = models.FunctionList.model_validate(stepline.http.get("/v1/functions").json())
    kinds = {f.id: (f.app_id, f.app_kind, f.url is not None) for f in functions.data}
    assert kinds == {
        "py-echo": ("py-shop", "python", False),
        "shop-greet": ("shop", "sdk", True),
        "shop-nightly": ("shop", "sdk", True),
    }
    greet = next(f for f in functions.data if f.id == "shop-greet")
    assert greet.url is not None and greet.url.startswith(url + "?")


def test_a_re_sync_answers_the_same_app(stepline: Stepline, py_app: Serve) -> None:
    url = py_app(stepline.client("again"), _functions(stepline.client("again")))
    first = _sync(stepline, {"url": url})
    second = _sync(stepline, {"url": url})

    assert first[0] == second[0] == 200
    later = dict(second[1]["data"])
    assert later.pop("synced_at") >= first[1]["data"].pop("synced_at")  # a re-sync is recorded
    assert later == first[1]["data"]


def test_a_signed_server_syncs_in_band(
    make_stepline: Callable[..., Stepline], py_app: Serve
) -> None:
    server = make_stepline(signing_key=KEY)
    client = server.client("signed", is_production=True, signing_key=KEY)
    url = py_app(client, _functions(client))

    status, body = _sync(server, {"url": url})

    assert status == 200, body
    assert body["data"]["id"] == "signed"
    assert body["data"]["functions"] == ["signed-greet", "signed-nightly"]


def test_a_typescript_app_syncs_by_url_and_shows_as_ts_sdk_on_the_dashboard(
    stepline: Stepline, tmp_path: Path
) -> None:
    project = Path(__file__).parent / "ts_app"
    node = NodeApp(project, ["server.js"], tmp_path / "node.log")
    try:
        node.start({"INNGEST_DEV": stepline.url}, "/state")
        url = node.base + "/api/inngest"

        status, body = _sync(stepline, {"url": url})

        assert status == 200, (body, node.output())
        app = body["data"]
        assert (app["id"], app["kind"], app["url"]) == ("ts-tests", "sdk", url)
        assert app["sdk"].startswith("js:v4.") and app["framework"] == "express"
        assert "ts-tests-steps" in app["functions"]
        card = stepline.http.get("/apps").text
        assert '<span class="tag">TS SDK</span>' in card
        assert f'<dd class="sdk">TS SDK {app["sdk"].partition(":")[2]}</dd>' in card
        functions = stepline.http.get("/functions").text
        assert '<a href="/apps#app-ts-tests">ts-tests</a> <span class="tag sdk-tag">TS SDK' in (
            functions
        )
    finally:
        node.stop()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://example.com/api"}, "url", "must be an http(s) URL with a host"),
        ({"url": "http://"}, "url", "must be an http(s) URL with a host"),
        ({"url": "http://exa mple.com"}, "url", "without spaces"),
        ({"url": "http://example.com:99999/"}, "url", "Port out of range"),
        ({"url": 42}, "url", "valid string"),
        ({}, "url", "required"),
        ({"url": "http://a", "extra": 1}, "body", "unknown field 'extra'"),
        (["http://a"], "body", "must be a JSON object"),
    ],
)
def test_a_bad_url_is_refused_naming_the_field(
    stepline: Stepline, body: Any, field: str, words: str
) -> None:
    status, answer = _sync(stepline, body)

    assert status == 400, answer
    assert answer["field"] == field
    assert words in answer["error"]
    assert stepline.http.get("/v1/apps").json() == {"data": []}


def test_an_app_that_cannot_be_reached_is_a_502_saying_so(stepline: Stepline) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/inngest"

    status, answer = _sync(stepline, {"url": url})

    assert status == 502
    models.Error.model_validate(answer)
    assert answer["error"].startswith(f"could not reach {url}: ")


def test_a_url_that_refuses_the_sync_is_a_502_with_its_answer(stepline: Stepline) -> None:
    url = f"{stepline.url}/no/app/here"

    status, answer = _sync(stepline, {"url": url})

    assert status == 502
    assert answer["error"] == (
        f"{url} answered the sync with HTTP 404: no route for PUT /no/app/here"
    )


def test_an_app_that_registers_under_another_url_is_a_502_saying_where_to_look(
    stepline: Stepline, servers: Servers
) -> None:
    client = stepline.client("elsewhere")
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, _functions(client), serve_origin="http://example.test")
    url = servers.start(app) + "/api/inngest"

    status, answer = _sync(stepline, {"url": url})

    assert status == 502
    assert answer["error"].startswith(f"{url} answered the sync, but no app registered here")
    assert "INNGEST_SERVE_ORIGIN" in answer["error"]


def _db(store: Store) -> str:
    assert isinstance(store, SqliteStore | PostgresStore)
    return str(store.path) if isinstance(store, SqliteStore) else store.url


def test_the_client_lists_and_syncs_apps_over_http_and_on_the_database(
    stepline: Stepline, py_app: Serve, store: Store
) -> None:
    url = py_app(stepline.client("client-app"), _functions(stepline.client("client-app")))
    unreachable = f"http://127.0.0.1:{free_port()}/api/inngest"

    # On the database: the app registers with the server, which serves the same database.
    with Client.local(_db(store)) as local:
        app = local.sync_app(url)
        with pytest.raises(errors.InvalidInput, match=r"^url: must be an http"):
            local.sync_app("localhost:3000")
        with pytest.raises(errors.ClientError, match="could not reach") as failed:
            local.sync_app(unreachable)
        assert failed.value.status == 502
        assert local.list_apps() == [app]

    assert (app["id"], app["url"]) == ("client-app", url)
    with Client(stepline.url, timeout=30) as remote:
        assert remote.list_apps() == [app]
        again = remote.sync_app(url)
        assert again["synced_at"] >= app["synced_at"]  # an identical re-sync moves only this
        assert {**again, "synced_at": app["synced_at"]} == app
        with pytest.raises(errors.InvalidInput, match="url: must be an http"):
            remote.sync_app("localhost:3000")
        with pytest.raises(errors.ClientError, match="could not reach") as failed:
            remote.sync_app(unreachable)
        assert failed.value.status == 502
