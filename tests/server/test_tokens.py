"""Named tokens with roles over real HTTP, on both stores: every API route by every role, a
revoked token refused on its next request, tokens limited to some functions, named event keys,
and who started each run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import stepline
from stepline.engine.access import ROLES, allows
from stepline.engine.engine import Engine
from stepline.server.app import API
from stepline.server.auth import AuthSettings
from stepline.server.openapi import Endpoint
from tests.server.conftest import Served

pytestmark = pytest.mark.timeout(60)

BOOTSTRAP = "bootstrap-token-0123456789"


def _app() -> stepline.App:
    app = stepline.App("tokens-test")

    @app.function(id="echo", triggers=[stepline.event("tokens/echo")], retries=0)
    def echo(ctx: stepline.Context) -> Any:
        return ctx.event["data"]

    @app.function(id="other", triggers=[stepline.event("tokens/other")], retries=0)
    def other(ctx: stepline.Context) -> Any:
        return ctx.event["data"]

    return app


@dataclass
class Server:
    """A served engine with a bootstrap token, and an HTTP client per named token."""

    served: Served
    clients: dict[str, httpx.Client]

    def admin(self) -> httpx.Client:
        return self.as_token(BOOTSTRAP)

    def as_token(self, secret: str) -> httpx.Client:
        if secret in self.clients:
            return self.clients[secret]
        client = httpx.Client(
            base_url=self.served.url, headers={"authorization": f"Bearer {secret}"}, timeout=10
        )
        self.clients[secret] = client
        return client

    def token(self, name: str, role: str, **body: Any) -> httpx.Client:
        """A client holding a new named token."""
        created = self.admin().post("/v1/tokens", json={"name": name, "role": role, **body})
        assert created.status_code == 201, created.text
        return self.as_token(created.json()["data"]["secret"])


@pytest.fixture
def server(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Iterator[Server]:
    served = serve(make_engine(_app()), AuthSettings(api_token=BOOTSTRAP))
    found = Server(served=served, clients={})
    yield found
    for client in found.clients.values():
        client.close()


def _run_id(server: Server, function_id: str = "echo") -> str:
    invoked = server.admin().post(f"/v1/functions/{function_id}/invoke", json={"data": {}})
    assert invoked.status_code == 201, invoked.text
    run_id: str = invoked.json()["data"]["run_id"]
    server.served.engine.operations.wait_for_run(run_id, 10)
    return run_id


def _request(endpoint: Endpoint, ids: dict[str, str], n: int) -> tuple[str, dict[str, Any]]:
    """The path of `endpoint` with real ids, and a body it accepts (or none)."""
    path = endpoint.path.format(**ids)
    bodies: dict[str, Any] = {
        "send_events": {"name": "tokens/echo"},
        "cancel_runs": {"function_id": "echo", "preview": True},
        "replay_runs": {"function_id": "echo", "preview": True},
        "invoke_function": {"data": {}},
        "sync_app": {"url": "http://127.0.0.1:9/api/inngest"},
        "create_token": {"name": f"made-{n}", "role": "read"},
        "create_key": {"name": f"made-{n}"},
    }
    return path, ({"json": bodies[endpoint.handler]} if endpoint.handler in bodies else {})


def test_every_route_answers_each_role_as_its_table_says(server: Server) -> None:
    run_id = _run_id(server)
    event_id = server.admin().get("/v1/events").json()["data"][0]["internal_id"]
    ids = {
        "run_id": run_id,
        "event_id": event_id,
        "function_id": "echo",
        "name": "nobody",
        "step_hash": "0" * 40,
    }
    clients = {role: server.token(f"matrix-{role}", role) for role in ROLES}
    checked = 0
    for endpoint in API:
        if not endpoint.auth:
            continue
        for role, client in clients.items():
            checked += 1
            path, body = _request(endpoint, ids, checked)
            with client.stream(endpoint.method, path, **body) as response:
                status = response.status_code
                text = "" if endpoint.stream else response.read().decode()
            where = f"{endpoint.method} {endpoint.path} as {role}"
            if allows(role, endpoint.role):
                assert status not in (401, 403), f"{where}: {status} {text}"
            else:
                assert status == 403, f"{where}: {status} {text}"
                assert f"needs the {endpoint.role} role" in text, where
            if endpoint.handler == "pause_function" and status == 200:
                client.post("/v1/functions/echo/resume")
    assert checked == 3 * sum(1 for e in API if e.auth)


def test_a_read_token_reads_a_jobs_status_by_event_id_and_cannot_cancel(server: Server) -> None:
    sent = server.admin().post("/v1/events", json={"name": "tokens/echo", "id": "job-42"})
    assert sent.status_code == 200, sent.text
    reader = server.token("status-page", "read")

    run = reader.get("/v1/events/job-42/runs")
    assert run.status_code == 200, run.text
    [found] = run.json()["data"]
    assert found["function_id"] == "echo"
    assert reader.get(f"/v1/runs/{found['id']}").status_code == 200
    refused = reader.post(f"/v1/runs/{found['id']}/cancel", json={})
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "this needs the operate role; the token 'status-page' has the read role"
    )
    assert reader.post("/v1/tokens", json={"name": "x", "role": "admin"}).status_code == 403


def test_an_operate_token_acts_but_cannot_manage_tokens_keys_or_read_the_audit(
    server: Server,
) -> None:
    operator = server.token("ci", "operate")

    assert operator.post("/v1/functions/echo/invoke", json={}).status_code == 201
    for method, path in (
        ("GET", "/v1/tokens"),
        ("POST", "/v1/tokens/ci/revoke"),
        ("GET", "/v1/keys"),
        ("GET", "/v1/audit"),
    ):
        refused = operator.request(method, path)
        assert refused.status_code == 403, path
        assert "needs the admin role" in refused.json()["error"]


def test_a_revoked_token_is_refused_on_its_next_request(server: Server) -> None:
    operator = server.token("deploy-bot", "operate")
    assert operator.get("/v1/runs").status_code == 200

    revoked = server.admin().post("/v1/tokens/deploy-bot/revoke", json={"reason": "leaked"})

    assert revoked.status_code == 200 and revoked.json()["data"]["revoked_at"]
    refused = operator.get("/v1/runs")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]


def test_a_token_revoked_in_the_database_by_another_process_is_refused_at_once(
    server: Server,
) -> None:
    reader = server.token("dashboard-poller", "read")
    assert reader.get("/v1/functions").status_code == 200

    # What `stepline tokens revoke --db` does from another process: no cache to wait for.
    operations = server.served.engine.operations
    operations.store.revoke_credential("token", "dashboard-poller", operations.clock.now())

    assert reader.get("/v1/functions").status_code == 401


def test_revoking_a_token_closes_the_live_streams_it_opened(server: Server) -> None:
    reader = server.token("status-page", "read")
    with reader.stream("GET", "/v1/runs/stream", timeout=30) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        server.admin().post("/v1/tokens/status-page/revoke", json={"reason": "page retired"})
        rest = list(lines)  # ends when the server closes it: within seconds, not at 300 s
    assert not any(line.startswith("event: end") for line in rest)  # closed, not finished
    assert reader.get("/v1/runs/stream").status_code == 401  # and the reconnection is refused


def test_a_token_limited_to_a_function_sees_and_acts_on_that_function_only(
    server: Server,
) -> None:
    mine, theirs = _run_id(server, "echo"), _run_id(server, "other")
    limited = server.token("echo-only", "operate", functions=["echo"])

    listed = limited.get("/v1/runs").json()["data"]
    assert {run["function_id"] for run in listed} == {"echo"}
    assert [f["id"] for f in limited.get("/v1/functions").json()["data"]] == ["echo"]
    assert limited.get(f"/v1/runs/{mine}").status_code == 200
    assert limited.get(f"/v1/runs/{theirs}").status_code == 404
    assert limited.post(f"/v1/runs/{theirs}/replay", json={}).status_code == 404
    assert limited.post("/v1/functions/other/invoke", json={}).status_code == 404
    assert limited.get("/v1/runs", params={"function_id": "other"}).status_code == 404
    spans = limited.get("/v1/events")
    assert spans.status_code == 403 and "limited to functions echo" in spans.json()["error"]


def test_named_event_keys_take_events_until_revoked_and_runs_name_their_sender(
    server: Server,
) -> None:
    admin = server.admin()
    key = admin.post("/v1/keys", json={"name": "shop-backend"}).json()["data"]["secret"]
    http = server.served.http

    sent = http.post(f"/e/{key}", json={"name": "tokens/echo", "data": {"n": 1}})
    assert sent.status_code == 200, sent.text
    [run] = admin.get(f"/v1/events/{sent.json()['ids'][0]}/runs").json()["data"]
    assert run["trigger"]["by"] == "shop-backend"

    operator = server.token("nightly-ci", "operate")
    invoked = operator.post("/v1/functions/echo/invoke", json={}).json()["data"]["run_id"]
    assert admin.get(f"/v1/runs/{invoked}").json()["data"]["trigger"]["by"] == "nightly-ci"
    [event_id] = operator.post("/v1/events", json={"name": "tokens/other"}).json()["data"]["ids"]
    [by_api] = admin.get(f"/v1/events/{event_id}/runs").json()["data"]
    assert by_api["trigger"]["by"] == "nightly-ci"

    admin.post("/v1/keys/shop-backend/revoke")
    refused = http.post(f"/e/{key}", json={"name": "tokens/echo"})
    assert refused.status_code == 401
    listed = admin.get("/v1/keys").json()["data"]
    assert [(k["name"], k["revoked_at"] is not None) for k in listed] == [("shop-backend", True)]
    assert "secret" not in str(listed) and key not in str(listed)
