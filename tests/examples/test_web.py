"""The stations page (`examples/base_stations/web.py`) against a real Stepline server.

Both run in uvicorn threads on free loopback ports: the Stepline server over the test's engine
(SQLite and PostgreSQL), and the page, built on `stepline.Client` like any app. Tests talk to
the page over HTTP and check what happened through the same public client.

A sync of the simulator's three pages takes a fraction of a second; to see one still running,
`gate` holds the fetch of page 3 until the test opens it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from examples.base_stations import vendor, web
from starlette.types import ASGIApp

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.server.app import create_app as stepline_server
from tests.loopback import free_port

pytestmark = pytest.mark.timeout(15)

JSON = {"Accept": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
VALID, INVALID, TOTAL = 240, 10, 250  # the simulator's default data set


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock set to now: the server computes ETAs against the wall clock."""
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def serve() -> Iterator[Callable[[ASGIApp], str]]:
    """Serve ASGI apps on loopback ports in threads; returns each one's URL. Stopped after."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: ASGIApp) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in reversed(servers):
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Demo:
    """The running demo: the page's HTTP client, the Stepline URL, and a Stepline client."""

    page: httpx.Client
    stepline_url: str
    client: stepline.Client


@pytest.fixture
def demo(engine: Engine, serve: Callable[[ASGIApp], str]) -> Iterator[Demo]:
    """Stepline serving the example app's engine, and the stations page pointed at it."""
    stepline_url = serve(stepline_server(engine.operations))
    page_url = serve(web.create_app(stepline_url))
    with (
        httpx.Client(base_url=page_url, timeout=10) as page,
        stepline.Client(stepline_url, timeout=10) as client,
    ):
        yield Demo(page=page, stepline_url=stepline_url, client=client)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold the fetch of page 3 until the event is set (set anyway after the test)."""
    opened = threading.Event()
    fetch_page = vendor.fetch_page

    def held(page: int, per_page: int) -> vendor.Page:
        if page == 3:
            opened.wait(10)
        return fetch_page(page, per_page)

    monkeypatch.setattr(vendor, "fetch_page", held)
    yield opened
    opened.set()


def sync_now(demo: Demo, **options: bool) -> httpx.Response:
    """Press "Sync now" asking for JSON."""
    return demo.page.post("/sync", json=options, headers=JSON)


def status(demo: Demo) -> dict[str, Any]:
    """The page's status JSON: the latest sync."""
    response = demo.page.get("/status")
    assert response.status_code == 200
    sync: dict[str, Any] = response.json()["sync"]
    return sync


def wait_for_status(demo: Demo, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll `/status` until `ready` accepts the latest sync."""
    deadline = time.monotonic() + 10
    while not ready(sync := status(demo)):
        assert time.monotonic() < deadline, f"still {sync}"
        time.sleep(0.02)
    return sync


def announcement(demo: Demo, run: dict[str, Any]) -> dict[str, Any]:
    """The event the run sent from its `announce-*` step, read back from Stepline."""
    [step] = [step for step in run["steps"] if step["id"].startswith("announce-")]
    [event_id] = step["output"]
    return demo.client.get_event(event_id)


def test_sync_now_starts_a_run_and_the_page_lists_the_stations(demo: Demo) -> None:
    before = demo.page.get("/")
    assert before.status_code == 200
    assert "0 stations" in before.text
    assert "No sync yet." in before.text

    response = sync_now(demo)

    assert response.status_code == 202
    started = response.json()
    run_id = started["run_id"]
    assert started["url"] == f"{demo.stepline_url}/runs/{run_id}"
    assert [run["id"] for run in demo.client.runs_for_event(started["event_id"])] == [run_id]
    event = demo.client.get_event(started["event_id"])
    assert (event["name"], event["data"]) == (
        "stepline/function.invoked",
        {"delete_stale": False},
    )
    assert demo.client.wait_for_run(run_id, timeout=10)["status"] == "COMPLETED"

    page = demo.page.get("/")
    assert f"{VALID} stations" in page.text
    assert "<code>TBN-2600000</code>" in page.text
    assert page.text.count("<tr>") == VALID + 1  # and the header
    assert "Last sync" in page.text
    assert f'href="{demo.stepline_url}/runs/{run_id}"' in page.text
    assert f'inserted <b data-field="inserted">{VALID}</b>' in page.text
    assert f'invalid <b data-field="invalid">{INVALID}</b>' in page.text


def test_the_form_sends_its_checkboxes_and_redirects_to_the_page(demo: Demo) -> None:
    response = demo.page.post("/sync", content="dry_run=on", headers=FORM)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    [run] = demo.client.list_runs(function_id="stations-sync")
    event = demo.client.get_event(run["trigger"]["event_id"])
    assert event["data"] == {"delete_stale": False}
    assert run["dry_run"] is True  # a dry run of Stepline's, not a flag in the data
    assert demo.client.wait_for_run(run["id"], timeout=10)["output"]["dry_run"] is True
    assert status(demo)["display"]["status"] == "COMPLETED, dry run"
    assert "0 stations" in demo.page.get("/").text  # a dry run writes nothing


def test_second_sync_now_while_one_runs_gets_409_and_starts_nothing(
    demo: Demo, gate: threading.Event
) -> None:
    first = sync_now(demo).json()["run_id"]

    again = sync_now(demo, delete_stale=True)

    assert again.status_code == 409
    assert again.json()["run_id"] == first
    assert again.json()["url"] == f"{demo.stepline_url}/runs/{first}"
    as_html = demo.page.post("/sync", content="", headers=FORM)
    assert as_html.status_code == 409
    assert as_html.headers["content-type"].startswith("text/html")
    assert "A sync is already running" in as_html.text
    assert f"<code>{first}</code>" in as_html.text
    assert [run["id"] for run in demo.client.list_runs(function_id="stations-sync")] == [first]

    gate.set()
    assert demo.client.wait_for_run(first, timeout=10)["status"] == "COMPLETED"
    after = sync_now(demo)
    assert after.status_code == 202
    assert after.json()["run_id"] != first


def test_status_shows_progress_and_counters(demo: Demo, gate: threading.Event) -> None:
    run_id = sync_now(demo).json()["run_id"]

    # Stepline saves progress and counters when the next step starts (or within half a
    # second), so while the fetch of page 3 is held the run shows page 2 of 3 done, and stays so.
    running = wait_for_status(demo, lambda sync: sync["percent"] == 66.7)

    assert (running["id"], running["status"], running["active"]) == (run_id, "RUNNING", True)
    pages = 2
    assert running["message"] == f"page {pages} of 3"
    assert running["eta_seconds"] is not None
    assert running["eta_seconds"] >= 0
    progress = f"{running['percent']} % — page {pages} of 3, about "
    assert running["display"]["progress"].startswith(progress)
    counters = running["counters"]
    assert counters["inserted"] >= 96 * pages
    assert counters["fetched"] >= 100 * pages
    assert counters["invalid"] >= 4 * pages
    assert counters["fetched"] <= 200
    page = demo.page.get("/").text
    assert "Current sync" in page
    assert f'<progress max="100" value="{running["percent"]}">' in page
    assert 'data-active="true"' in page

    gate.set()
    done = wait_for_status(demo, lambda sync: not sync["active"])

    assert (done["status"], done["percent"], done["eta_seconds"]) == ("COMPLETED", 100.0, None)
    assert done["counters"]["inserted"] == VALID
    assert done["duration_seconds"] is not None
    assert done["error"] is None


def test_a_finished_sync_announces_its_summary(demo: Demo) -> None:
    run_id = sync_now(demo).json()["run_id"]
    run = demo.client.wait_for_run(run_id, timeout=10)

    event = announcement(demo, demo.client.get_run(run_id))

    assert event["name"] == "stations/sync.completed"
    assert event["data"] == {"run_id": run_id, "summary": run["output"]}
    assert run["output"] == {
        "fetched": TOTAL,
        "inserted": VALID,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "invalid": INVALID,
        "dry_run": False,
    }


def test_a_failed_sync_announces_the_error(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATIONS_PORTAL_TOKEN", "wrong")  # the portal answers 401
    run_id = sync_now(demo).json()["run_id"]
    assert demo.client.wait_for_run(run_id, timeout=10)["status"] == "FAILED"

    event = announcement(demo, demo.client.get_run(run_id))

    assert event["name"] == "stations/sync.failed"
    assert (event["data"]["run_id"], event["data"]["step"]) == (run_id, "fetch-page-1")
    assert "portal refused page 1: 401" in event["data"]["error"]
    failed = status(demo)
    assert (failed["status"], failed["active"]) == ("FAILED", False)
    assert "portal refused page 1: 401" in failed["error"]
    assert "portal refused page 1: 401" in demo.page.get("/").text


def test_bad_requests_are_refused(demo: Demo) -> None:
    not_a_flag = demo.page.post("/sync", json={"dry_run": "yes"}, headers=JSON)
    assert not_a_flag.status_code == 400
    assert not_a_flag.json() == {"error": "dry_run must be true or false"}
    cross_site = demo.page.post("/sync", headers={"Origin": "https://elsewhere.example"})
    assert cross_site.status_code == 403
    assert demo.client.list_runs(function_id="stations-sync") == []


def test_the_page_says_when_stepline_is_down(
    serve: Callable[[ASGIApp], str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STATIONS_DB", str(tmp_path / "stations.db"))
    down = f"http://127.0.0.1:{free_port()}"
    with httpx.Client(base_url=serve(web.create_app(down)), timeout=10) as page:
        html = page.get("/")
        assert html.status_code == 200
        assert "Stepline is not answering: cannot reach Stepline at" in html.text
        assert page.get("/status").status_code == 503
        refused = page.post("/sync", headers=JSON)
        assert refused.status_code == 503
        assert refused.json()["error"].startswith("Could not start the sync: cannot reach")
