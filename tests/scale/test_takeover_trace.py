"""A worker process SIGKILLed in the middle of a step: another worker process takes the run over
once the lease expires, and the run page's trace (in Chromium, served by a real `stepline server`)
marks the gap with the lost worker's name; the run's log has the same line. Both stores."""

from __future__ import annotations

import os
import re
import signal

import pytest
from playwright.sync_api import Browser, expect

from stepline.store.base import RunFilter, Store
from tests.scale.support import Cluster, eventually, read_effects, start_workers, status_counts
from tests.server.conftest import shoot

LEASE_SECONDS = 2.0


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_sigkilled_workers_run_is_taken_over_and_the_trace_marks_the_gap(
    store: Store, cluster: Cluster, browser: Browser
) -> None:
    [lost] = start_workers(store, cluster, 1, lease_seconds=LEASE_SECONDS)
    lost_id = next(w.id for w in store.list_workers() if w.pid == lost.pid)
    cluster.server()
    cluster.send({"steps": 3, "seconds": [0.1, 4.0, 0.1]})
    eventually(
        lambda: any(e.step == "s2" for e in read_effects(cluster.effects)),
        what="the first worker to begin s2",
        timeout=20,
    )
    os.kill(lost.pid, signal.SIGKILL)
    assert lost.wait(10) == -signal.SIGKILL
    [taker] = start_workers(store, cluster, 1, lease_seconds=LEASE_SECONDS)
    eventually(
        lambda: status_counts(store) == {"COMPLETED": 1}, what="the run to complete", timeout=40
    )
    [run] = store.list_runs(RunFilter(limit=5))
    [line] = [log for log in store.get_logs(run.id) if log.level == "reclaim"]
    assert line.message.startswith(f"Worker {lost_id} stopped renewing its lease")
    assert [e.pid for e in read_effects(cluster.effects) if e.step == "s2"] == [
        lost.pid,
        taker.pid,
    ], "s2 was executed again by the worker that took over; s1 was not"

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    try:
        page.goto(f"{cluster.url}/runs/{run.id}")
        takeover = page.locator(".trace-row").first.locator(".span-takeover")
        expect(takeover).to_have_count(1)
        takeover.click()
        panel = page.locator(".trace-panel.selected")
        expect(panel).to_contain_text("Worker lost")
        expect(panel).to_contain_text(f"Worker {lost_id} stopped renewing its lease")
        expect(panel).to_contain_text(re.compile(r"Gap\s*\d"))
        expect(page.locator(".trace-label")).to_have_text(["run", "s1", "s2", "s3"])
        shoot(page, "run-trace-takeover")
    finally:
        page.close()
