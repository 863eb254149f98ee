"""The audit log over real HTTP, on both stores: every operator action is appended with who,
when, what, on what and why (API, dashboard, logins, tokens and keys); `GET /v1/audit` pages
it for admins, the dashboard shows it to admins, and a read token's dashboard has no action
buttons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from tests.server.conftest import Served

pytestmark = pytest.mark.timeout(60)

BOOTSTRAP = "bootstrap-token-0123456789"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _app() -> stepline.App:
    app = stepline.App("audit-test")

    @app.function(id="echo", triggers=[stepline.event("audit/echo")], retries=0)
    def echo(ctx: stepline.Context) -> Any:
        return ctx.step.run("first", lambda: ctx.event["data"])

    return app


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    served = serve(make_engine(_app()), AuthSettings(api_token=BOOTSTRAP))
    served.http.headers["authorization"] = f"Bearer {BOOTSTRAP}"
    return served


def _client(served: Served, token: str | None = None, **cookies: str) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=served.url, headers=headers, cookies=cookies, timeout=10)


def _token(served: Served, name: str, role: str) -> str:
    created = served.http.post("/v1/tokens", json={"name": name, "role": role})
    assert created.status_code == 201, created.text
    secret: str = created.json()["data"]["secret"]
    return secret


def _entries(served: Served, **params: Any) -> list[dict[str, Any]]:
    page = served.http.get("/v1/audit", params=params)
    assert page.status_code == 200, page.text
    entries: list[dict[str, Any]] = page.json()["data"]
    return entries


def test_each_api_action_is_audited_with_actor_target_and_reason(served: Served) -> None:
    operator = _client(served, _token(served, "ci", "operate"))
    with operator:
        run_id = operator.post("/v1/functions/echo/invoke", json={"data": {"n": 1}}).json()
        run_id = run_id["data"]["run_id"]
        served.engine.operations.wait_for_run(run_id, 10)
        operator.post(f"/v1/runs/{run_id}/cancel", json={"reason": "wrong data"})
        replayed = operator.post(f"/v1/runs/{run_id}/replay", json={"reason": "fixed"})
        rerun = operator.post(f"/v1/runs/{run_id}/rerun", json={"from_step": "first"})
        bulk = operator.post(
            "/v1/runs/cancel", json={"function_id": "echo", "status": "QUEUED", "reason": "x"}
        )
        operator.post("/v1/functions/echo/pause", json={"reason": "vendor outage"})
        operator.post("/v1/functions/echo/resume")
    served.http.post("/v1/keys", json={"name": "shop"})
    served.http.post("/v1/tokens/ci/revoke", json={"reason": "rotated"})
    served.http.post("/v1/keys/shop/revoke")

    entries = _entries(served, limit=50)

    done = [(e["actor"], e["action"], e["target"], e["reason"]) for e in reversed(entries)]
    assert done == [
        ("bootstrap", "token.create", "ci", None),
        ("ci", "function.invoke", "echo", None),
        ("ci", "run.cancel", run_id, "wrong data"),
        ("ci", "run.replay", run_id, "fixed"),
        ("ci", "run.rerun", run_id, None),
        ("ci", "runs.cancel", None, "x"),
        ("ci", "function.pause", "echo", "vendor outage"),
        ("ci", "function.resume", "echo", None),
        ("bootstrap", "key.create", "shop", None),
        ("bootstrap", "token.revoke", "ci", "rotated"),
        ("bootstrap", "key.revoke", "shop", None),
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["function.invoke"]["details"] == {"run_id": run_id}
    assert by_action["run.replay"]["details"] == {"run_id": replayed.json()["data"]["run_id"]}
    assert by_action["run.rerun"]["details"]["run_id"] == rerun.json()["data"]["run_id"]
    assert by_action["runs.cancel"]["details"] == {
        "filter": {"function_id": "echo", "status": "QUEUED"},
        "count": bulk.json()["data"]["affected"],
    }
    assert by_action["token.create"]["details"] == {"role": "operate", "functions": None}
    assert all(e["at"].endswith("Z") for e in entries)


def test_the_audit_log_pages_and_filters(served: Served) -> None:
    for n in range(3):
        served.http.post("/v1/keys", json={"name": f"key-{n}"})

    first = served.http.get("/v1/audit", params={"limit": 2}).json()
    rest = served.http.get("/v1/audit", params={"limit": 2, "before": first["next_cursor"]})

    assert [e["target"] for e in first["data"]] == ["key-2", "key-1"]
    assert [e["target"] for e in rest.json()["data"]] == ["key-0"]
    assert rest.json()["next_cursor"] is None
    assert _entries(served, actor="nobody") == []
    assert len(_entries(served, action="key.create")) == 3


def test_dashboard_sign_ins_and_actions_are_audited_as_the_dashboard_and_token(
    served: Served,
) -> None:
    secret = _token(served, "alice", "operate")
    anonymous = _client(served)
    with anonymous:
        origin = {**FORM, "origin": served.url}
        wrong = anonymous.post("/login", data={"token": "guess"}, headers=origin)
        right = anonymous.post("/login", data={"token": secret}, headers=origin)
        assert (wrong.status_code, right.status_code) == (401, 303)
        invoked = anonymous.post("/functions/echo/invoke", data={"payload": "{}"}, headers=origin)
        assert invoked.status_code == 303
        run_id = invoked.headers["location"].rsplit("/", 1)[1]

    entries = _entries(served)

    assert [(e["actor"], e["action"]) for e in entries[:3]] == [
        ("dashboard:alice", "function.invoke"),
        ("dashboard:alice", "login"),
        ("dashboard:?", "login.failed"),
    ]
    assert entries[0]["details"] == {"run_id": run_id}
    assert entries[2]["details"] == {"address": "127.0.0.1"}
    run = served.http.get(f"/v1/runs/{run_id}").json()["data"]
    assert run["trigger"]["by"] == "dashboard:alice"


def test_a_read_tokens_dashboard_shows_pages_without_action_buttons(served: Served) -> None:
    run_id = served.http.post("/v1/functions/echo/invoke", json={}).json()["data"]["run_id"]
    served.engine.operations.wait_for_run(run_id, 10)
    reader = _client(served, stepline_token=_token(served, "wallboard", "read"))
    admin = _client(served, stepline_token=BOOTSTRAP)
    with reader, admin:
        run_page = reader.get(f"/runs/{run_id}")
        functions = reader.get("/functions")
        function = reader.get("/functions/echo")
        runs = reader.get("/runs", params={"function_id": "echo"})
        events = reader.get("/events")
        for page in (run_page, functions, function, runs, events):
            assert page.status_code == 200
        assert ">Replay</button>" not in run_page.text
        assert "Rerun with edits" not in run_page.text and "Cancel run" not in run_page.text
        assert ">Run now</button>" not in functions.text + function.text
        assert ">Pause</a>" not in function.text and "Pause…" not in functions.text
        assert "Cancel selected" not in runs.text and 'name="run_id"' not in runs.text
        assert ">Send event</button>" not in events.text
        assert 'href="/audit"' not in functions.text
        origin = {**FORM, "origin": served.url}
        refused = reader.post(f"/runs/{run_id}/replay", headers=origin)
        assert refused.status_code == 403
        assert "needs the operate role" in refused.text
        assert reader.get("/audit").status_code == 403

        assert ">Replay</button>" in admin.get(f"/runs/{run_id}").text
        audit_page = admin.get("/audit")
        assert audit_page.status_code == 200 and 'href="/audit"' in audit_page.text
        assert "token.create" in audit_page.text and "wallboard" in audit_page.text
