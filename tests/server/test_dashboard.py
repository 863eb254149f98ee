"""The dashboard without a browser: complete HTML pages, plain form posts, sign-in, CSRF, SSE."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from stepline.server.dashboard_auth import safe_next
from stepline.server.dashboard_json import json_block
from stepline.server.dashboard_models import moment
from stepline.store.base import Store
from tests.engine.support import eventually
from tests.server.conftest import Served, options_app

pytestmark = pytest.mark.timeout(15)

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _app() -> stepline.App:
    app = stepline.App("dash-test")

    @app.function(
        id="echo",
        name="Echo the payload",
        triggers=[stepline.event("dash/echo"), stepline.cron("30 2 * * *", tz="Asia/Tokyo")],
        retries=0,
    )
    def echo(ctx: Any) -> dict[str, Any]:
        ctx.progress(2, 4, "halfway")
        ctx.count("rows", 7)
        value = ctx.step.run("read", lambda: ctx.event["data"])
        ctx.log.error("something looked odd")
        return {"echo": value}

    @app.function(id="napper", triggers=[stepline.event("dash/nap")])
    def napper(ctx: Any) -> str:
        ctx.step.sleep("nap", "1h")
        return "rested"

    return app


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(_app()))


def _completed_run(served: Served, data: dict[str, Any] | None = None) -> str:
    run_id = served.engine.invoke("echo", data or {"region": "north"})
    assert served.engine.wait_for_run(run_id, 10).status == "COMPLETED"
    return run_id


def _html(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    return text


def _post(served: Served, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
    return served.http.post(path, data=data, headers={**FORM, **headers})


def test_every_page_is_complete_html_without_javascript(served: Served) -> None:
    run_id = _completed_run(served)
    event_id = served.engine.send({"name": "dash/echo", "data": {"k": "v"}})[0]
    pages = {
        "/": ["echo", "Echo the payload", "dash/echo", "Run now", 'href="/runs/'],
        "/functions": ["30 2 * * * (Asia/Tokyo)", "next <time datetime="],
        "/runs": [run_id, "COMPLETED", "manual"],
        f"/runs/{run_id}": ["COMPLETED", "halfway", "50%", "rows", "7", "read", "region"],
        "/events": ["dash/echo", "Send event"],
        f"/events/{event_id}": ["dash/echo", "&#34;k&#34;: &#34;v&#34;", "echo"],
    }
    for path, needles in pages.items():
        text = _html(served.http.get(path))
        for needle in needles:
            assert needle in text, (path, needle)
        # Offline: no CDN, nothing loaded from another host.
        assert not re.search(r'(src|href)="(https?:)?//', text), path
        assert 'href="#main"' in text and 'id="main"' in text, "skip link"
    for asset in ("htmx.min.js", "htmx-ext-sse.min.js", "dashboard.css", "trace.js"):
        assert served.http.get(f"/static/{asset}").status_code == 200


def test_run_page_shows_steps_counters_error_logs_and_the_next_cron_fire(
    served: Served,
) -> None:
    run_id = _completed_run(served)
    text = _html(served.http.get(f"/runs/{run_id}"))
    assert 'class="log log-error"' in text and "something looked odd" in text
    assert 'class="trace-row indent-0"' in text and 'class="span span-attempt-ok"' in text
    assert 'class="trace-panel card" id="panel-' in text and 'style="left: ' in text
    assert "sse-connect" not in text, "a finished run does not stream"
    assert "Cancel run" not in text and "Replay" in text
    # 02:30 in Tokyo is 17:30 UTC the day before; the fake clock starts 2026-01-01 00:00 UTC.
    functions = _html(served.http.get("/"))
    assert (
        '<time datetime="2026-01-01T17:30:00.000Z" data-relative>2026-01-01 17:30:00 UTC</time>'
        in functions
    )


def test_functions_page_shows_the_last_and_missed_cron_fires(
    served: Served, clock: FakeClock
) -> None:
    # While no scheduler ran, four ticks fell due; the latest of them was run, three missed.
    # The engine's scheduler records the schedule on first sight: after that, no race.
    store, schedule = served.engine.store, "TZ=Asia/Tokyo 30 2 * * *"
    eventually(lambda: store.cron_last_tick("echo", schedule), what="the schedule's first sight")
    tick = datetime(2026, 1, 4, 17, 30, tzinfo=UTC)
    assert store.fire_cron_tick("echo", schedule, tick, None, clock.now(), missed=3)
    functions = _html(served.http.get("/"))
    assert "3 missed" in functions
    assert '<time datetime="2026-01-04T17:30:00.000Z" data-relative>' in functions


def _options_listed(page: str, function_id: str) -> list[tuple[str, str]]:
    """The (chip, setting) of each option on the function's card, as a reader sees them."""
    listed = re.search(
        rf'<ul class="options" aria-labelledby="function-{function_id}-options">(.*?)</ul>',
        page,
        re.S,
    )
    assert listed, function_id
    items = []
    for item in re.findall(r"<li>(.*?)</li>", listed.group(1), re.S):
        parts = re.fullmatch(r'\s*<span class="tag">(.*?)</span>(.*)', item, re.S)
        assert parts, item
        chip, rest = parts.groups()
        setting = " ".join(re.sub(r"<[^>]+>", "", rest).split())
        items.append((html.unescape(chip), html.unescape(setting)))
    return items


def test_functions_page_shows_each_functions_options(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(options_app()))
    page = _html(served.http.get("/functions"))
    assert _options_listed(page, "sync-script") == [
        ("concurrency", "2 per event.data.customer"),
        ("throttle", "10 per 1m (burst 1)"),
        ("rate limit", "1 per 1h per event.data.customer"),
        ("debounce", "30s per event.data.sku (max 5m)"),
        ("priority", "event.data.plan == 'enterprise' ? 120 : 0"),
        ("idempotency", "event.data.order_id (24h)"),
        ("singleton", "skip per event.data.script"),
        ("cancel on", "sync/cancelled if event.data.id == async.data.id (1d)"),
        ("start within", "5m"),
        ("on failure", "sync-script-failure"),
    ]
    assert '<h3 id="function-sync-script-options">Options</h3>' in page
    assert '<a href="/functions#function-sync-script-failure"><code>sync-script-failure' in page
    assert _options_listed(page, "batched") == [
        ("batch", "up to 100 events or 5s per event.data.warehouse")
    ]
    assert 'id="function-sync-script-failure"' in page
    assert 'id="function-sync-script-failure-options"' not in page, "no options, no list"


def test_run_now_starts_a_manual_run_and_redirects_to_it(served: Served) -> None:
    response = _post(served, "/functions/echo/invoke", {"payload": '{"limit": 3}'})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/runs/")
    run = served.engine.wait_for_run(location.removeprefix("/runs/"), 10)
    assert run.trigger_kind == "manual" and run.trigger_by == "dashboard"
    assert run.output is not None and json.loads(run.output) == {"echo": {"limit": 3}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"limit": ', "payload: not valid JSON: Expecting value"),
        ("[1, 2]", "payload: must be a JSON object"),
    ],
)
def test_run_now_with_bad_json_rerenders_the_form_with_the_error(
    served: Served, store: Store, payload: str, message: str
) -> None:
    text = _html(_post(served, "/functions/echo/invoke", {"payload": payload}), 400)
    assert message in text
    assert 'aria-invalid="true"' in text
    # The textarea keeps what was typed (escaped) so it can be fixed.
    typed = payload.replace('"', "&#34;")
    assert f">{typed}</textarea>" in text
    assert served.engine.list_runs() == []


def test_unknown_pages_and_functions_are_html_404s(served: Served) -> None:
    assert "no run with id" in _html(served.http.get("/runs/nope"), 404)
    assert "no event" in _html(served.http.get("/events/nope"), 404).lower()
    assert "unknown function" in _html(
        _post(served, "/functions/nope/invoke", {"payload": "{}"}), 404
    )
    html_404 = served.http.get("/nowhere", headers={"accept": "text/html"})
    assert html_404.status_code == 404 and "text/html" in html_404.headers["content-type"]
    assert served.http.get("/nowhere").json()["status"] == 404


def test_cancel_and_replay_forms_redirect(served: Served, store: Store) -> None:
    run_id = served.engine.invoke("napper")
    deadline = time.monotonic() + 10
    while store.get_run(run_id).detail != "SLEEPING":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "Cancel run" in _html(served.http.get(f"/runs/{run_id}"))
    cancelled = _post(served, f"/runs/{run_id}/cancel", {"confirmed": "true"})
    assert cancelled.status_code == 303 and cancelled.headers["location"] == f"/runs/{run_id}"
    assert store.get_run(run_id).status == "CANCELLED"
    replayed = _post(served, f"/runs/{run_id}/replay", {})
    assert replayed.status_code == 303
    new_id = replayed.headers["location"].removeprefix("/runs/")
    assert store.get_run(new_id).replay_of == run_id
    assert f'href="/runs/{run_id}"' in _html(served.http.get(f"/runs/{new_id}"))


def test_send_event_form_stores_it_and_shows_bad_input(served: Served) -> None:
    sent = _post(served, "/events", {"name": "dash/echo", "data": '{"x": "<b>bold</b>"}'})
    assert sent.status_code == 303
    page = _html(served.http.get(sent.headers["location"]))
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert 'sse-connect="/runs/stream?event_id=' in page
    refused = _html(_post(served, "/events", {"name": "", "data": '{"kept": 1}'}), 400)
    assert "event.name" in refused and ">{&#34;kept&#34;: 1}</textarea>" in refused
    assert "not valid JSON" in _html(_post(served, "/events", {"name": "a/b", "data": "{"}), 400)


def test_runs_page_filters_and_pages_with_before(served: Served) -> None:
    ids = [_completed_run(served) for _ in range(3)]
    napper = served.engine.invoke("napper")
    first = _html(served.http.get("/runs", params={"limit": "2"}))
    assert napper in first and ids[2] in first and ids[1] not in first
    older = re.search(r'href="(/runs\?[^"]*before=[^"]*)" rel="next"', first)
    assert older is not None
    second = _html(served.http.get(older.group(1).replace("&amp;", "&")))
    assert ids[1] in second and ids[0] in second and napper not in second
    assert "sse-connect" not in second, "older pages do not stream"
    only_echo = _html(served.http.get("/runs", params={"function_id": "echo"}))
    assert napper not in only_echo and all(i in only_echo for i in ids)
    assert '<option value="echo" selected>' in only_echo
    # The same checks as GET /v1/runs.
    assert "status: Input should be" in _html(served.http.get("/runs?status=DONE"), 400)


def test_run_stream_sends_sections_then_end_for_a_finished_run(served: Served) -> None:
    run_id = _completed_run(served)
    with served.http.stream("GET", f"/runs/{run_id}/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = re.findall(r"^event: (\w+)$", body, flags=re.MULTILINE)
    assert events == ["summary", "progress", "outcome", "steps", "logs", "end"]
    assert re.search(r'^data: .*<span id="run-status" [^>]*>COMPLETED<', body, re.MULTILINE)


def test_runs_stream_sends_the_rows(served: Served) -> None:
    run_id = _completed_run(served)
    with served.http.stream("GET", "/runs/stream?function_id=echo") as response:
        lines = response.iter_lines()
        head = [next(lines) for _ in range(3)]
    assert head[0] == "retry: 2000" and head[2] == "event: runs"
    assert served.http.get("/runs/stream?status=nope").status_code == 400
    assert run_id


def test_token_protects_pages_and_the_login_cookie_opens_them(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(_app()), AuthSettings(api_token="s3cret"))
    run_id = _completed_run(served)
    for path in ("/", "/runs", f"/runs/{run_id}", "/events"):
        response = served.http.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    assert served.http.get(f"/runs/{run_id}/stream").status_code == 401
    assert served.http.get("/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert served.http.get("/static/dashboard.css").status_code == 200

    wrong = _post(served, "/login", {"token": "nope", "next": "/runs"})
    assert wrong.status_code == 401 and "not an API token of this server" in wrong.text
    login = _post(served, "/login", {"token": "s3cret", "next": f"/runs/{run_id}"})
    assert login.status_code == 303 and login.headers["location"] == f"/runs/{run_id}"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie

    browser = httpx.Client(base_url=served.url, cookies={"stepline_token": "s3cret"})
    with browser:
        for path in ("/", "/runs", f"/runs/{run_id}", "/events"):
            text = _html(browser.get(path))
            assert "Sign out" in text, path
        # Forms posted with the cookie must come from this origin.
        same = {**FORM, "origin": served.url}
        assert browser.post(f"/runs/{run_id}/replay", headers=same).status_code == 303
        foreign = {**FORM, "origin": "https://evil.example"}
        assert browser.post(f"/runs/{run_id}/replay", headers=foreign).status_code == 403
        assert browser.post(f"/runs/{run_id}/replay", headers=FORM).status_code == 403
    with httpx.Client(base_url=served.url, cookies={"stepline_token": "bad"}) as stranger:
        assert stranger.get("/").status_code == 303
    scripted = _post(served, f"/runs/{run_id}/replay", {}, authorization="Bearer s3cret")
    assert scripted.status_code == 303
    with httpx.Client(base_url=served.url) as anonymous:
        assert anonymous.post(f"/runs/{run_id}/replay", headers=FORM).status_code == 401


def test_open_dashboard_still_refuses_cross_site_posts(served: Served) -> None:
    refused = _post(served, "/functions/echo/invoke", {"payload": "{}"}, origin="http://evil")
    assert refused.status_code == 403
    assert served.engine.list_runs() == []


def test_login_only_returns_to_local_paths() -> None:
    assert safe_next("/runs?status=FAILED") == "/runs?status=FAILED"
    for target in ("//evil.example/x", "https://evil.example", "/\\evil", "", None):
        assert safe_next(target) == "/"


def test_view_model_helpers() -> None:
    stamp = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC) + timedelta(hours=0)
    assert moment(stamp).iso == "2026-03-04T05:06:07.890Z"
    assert moment(stamp).text == "2026-03-04 05:06:07 UTC"
    assert not json_block({"a": 1}).long
    assert json_block(list(range(100))).long
