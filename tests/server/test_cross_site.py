"""Requests a web page could make to `stepline dev` are refused; SDKs, CLI and dashboard work.

Without an API token the server is open on loopback, so what stops a page the developer
visits from posting to it is: JSON only (a page can only send `text/plain`, forms or nothing
without a CORS preflight), its own `Origin` only, and loopback `Host` names only (DNS
rebinding). With a token, the server answers to any host name; a foreign `Origin` is still
refused.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.datastructures import Headers

import stepline
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from stepline.server.cross_site import check
from stepline.store.base import RunFilter, Store
from tests.server.conftest import Served, echo_app

pytestmark = pytest.mark.timeout(20)

TOKEN = "t0ken-for-the-cross-site-tests"
EVENT = {"name": "xs/echo", "data": {"n": 1}}
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(echo_app("xs/echo")))


def _port(served: Served) -> str:
    return served.url.rsplit(":", 1)[1]


def _nothing_happened(store: Store) -> None:
    assert store.list_events(None, 10, None) == []
    assert store.list_runs(RunFilter()) == []
    [fn] = store.list_functions()
    assert not fn.paused


# Every POST a page can send without a preflight, to every endpoint that acts.
SIMPLE_POSTS = [
    ("/e/anykey", "text/plain", b'{"name": "xs/echo"}'),
    ("/e/anykey", "application/x-www-form-urlencoded", b'{"name": "xs/echo"}'),
    ("/e/anykey", "multipart/form-data; boundary=x", b'--x\r\n\r\n{"name":"xs/echo"}\r\n--x--'),
    ("/e/anykey", None, b'{"name": "xs/echo"}'),
    ("/v1/events", "text/plain", b'{"name": "xs/echo"}'),
    ("/v1/functions/echo/invoke", "text/plain", b'{"data": {}}'),
    ("/v1/functions/echo/pause", "text/plain", b""),
    ("/v1/runs/cancel", "text/plain;charset=UTF-8", b'{"function_id": "echo"}'),
    # an SDK app's registration: a page must not register an app for the server to call
    ("/fn/register", "text/plain", b'{"appName": "evil", "url": "http://evil.example/x"}'),
    ("/v0/gql", "text/plain", b'{"query": "{ __typename }"}'),
]


@pytest.mark.parametrize(("path", "content_type", "body"), SIMPLE_POSTS)
def test_open_server_refuses_posts_that_are_not_json(
    served: Served, store: Store, path: str, content_type: str | None, body: bytes
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = served.http.post(path, content=body, headers=headers)

    assert response.status_code == 415, response.text
    assert "Content-Type: application/json" in response.json()["error"]
    if path.startswith("/e/"):
        assert response.json()["ids"] == []
    _nothing_happened(store)


def test_open_server_refuses_pages_of_other_sites(served: Served, store: Store) -> None:
    evil = {"origin": "https://evil.example"}
    for path in ("/v1/functions/echo/pause", "/v1/functions/echo/invoke", "/e/anykey"):
        response = served.http.post(path, json=EVENT, headers=evil)
        assert response.status_code == 403, path
        assert "other sites" in response.json()["error"]
    for origin in ("null", f"http://localhost:{_port(served)}"):
        assert served.http.post("/e/k", json=EVENT, headers={"origin": origin}).status_code == 403
    assert served.http.get("/v1/runs", headers=evil).status_code == 403
    refused_form = served.http.post(
        "/events", data={"name": "xs/echo", "data": "{}"}, headers={**FORM, **evil}
    )
    assert refused_form.status_code == 403
    _nothing_happened(store)


def test_open_server_answers_only_to_loopback_names(served: Served, store: Store) -> None:
    """DNS rebinding: a page at evil.example re-resolved to 127.0.0.1 sends its own Host."""
    port = _port(served)
    for host in (f"evil.example:{port}", "evil.example", f"10.0.0.1:{port}", "127.0.0.1@evil"):
        for path in ("/v1/runs", "/v1/events", "/runs", "/"):
            response = served.http.get(path, headers={"host": host})
            assert response.status_code == 421, (host, path)
            assert "answers only to localhost" in response.text
        assert served.http.post("/e/k", json=EVENT, headers={"host": host}).status_code == 421
    page = served.http.get("/runs", headers={"host": f"evil.example:{port}", "accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    _nothing_happened(store)
    # 0.0.0.0 reaches this machine only (the Inngest SDKs' test tooling calls it so).
    for host in (
        f"localhost:{port}",
        f"127.0.0.1:{port}",
        f"[::1]:{port}",
        "LOCALHOST",
        f"0.0.0.0:{port}",
        f"[::]:{port}",
    ):
        assert served.http.get("/v1/runs", headers={"host": host}).status_code == 200, host


def test_sdks_cli_scripts_and_the_dashboard_keep_working(served: Served, store: Store) -> None:
    # The Inngest SDKs and stepline.Client send JSON, no Origin.
    sdk = served.http.post("/e/k", json=[EVENT], headers={"user-agent": "inngest-js:v3"})
    assert sdk.status_code == 200
    charset = served.http.post(
        "/e/k",
        content=b'{"name": "xs/echo"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200
    with stepline.Client(served.url) as client:
        run_id = client.invoke("echo", {"via": "client"})
        assert client.pause("echo")["paused"] is True
        assert client.resume("echo")["paused"] is False
    assert served.engine.wait_for_run(run_id, 10).status == "COMPLETED"
    # Body-less actions (the CLI's cancel, pause, replay) send no Content-Type at all.
    assert served.http.post(f"/v1/runs/{run_id}/replay").status_code == 201
    # The dashboard's own forms post from its origin.
    same = {**FORM, "origin": served.url}
    sent = served.http.post("/events", data={"name": "xs/echo", "data": "{}"}, headers=same)
    assert sent.status_code == 303
    assert len(store.list_events(None, 10, None)) == 4


def test_a_token_server_answers_to_any_host_but_not_to_other_sites(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(
        make_engine(echo_app("xs/echo")), AuthSettings(event_keys=("k" * 16,), api_token=TOKEN)
    )
    bearer = {"authorization": f"Bearer {TOKEN}"}
    public = {"host": "stepline.example.com", **bearer}
    assert served.http.get("/v1/runs", headers=public).status_code == 200
    # Behind a proxy, a script may send text; the key and token are what protect this server.
    text = served.http.post(f"/e/{'k' * 16}", content=b'{"name": "xs/echo"}', headers=public)
    assert text.status_code == 200
    foreign = {**public, "origin": "https://evil.example"}
    assert served.http.get("/v1/runs", headers=foreign).status_code == 403
    assert served.http.post("/v1/functions/echo/pause", headers=foreign).status_code == 403
    own = {**public, "origin": "https://stepline.example.com"}
    assert served.http.post("/v1/functions/echo/pause", headers=own).status_code == 200


def test_refusals_name_the_way_out() -> None:
    """The messages say what to do (checked on the pure function)."""
    plain = Headers({"host": "127.0.0.1:8288", "content-type": "text/plain"})
    status, message = check(plain, "POST", "/e/k", open_server=True) or (0, "")
    assert status == 415 and "'text/plain'" in message
    rebound = Headers({"host": "evil.example:8288"})
    status, message = check(rebound, "GET", "/v1/runs", open_server=True) or (0, "")
    assert status == 421 and "--api-token" in message
    assert check(rebound, "GET", "/v1/runs", open_server=False) is None
    assert check(Headers({"host": "[::1]:1"}), "GET", "/", open_server=True) is None
