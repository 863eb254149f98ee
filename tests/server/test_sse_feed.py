"""Live streams share one change feed per process (both stores, real HTTP on loopback).

Twenty streams open on one run cost the store one cheap change-mark read per half second while
nothing changes, instead of twenty polls of the run; when the run changes, every stream gets
it, from one shared poll. No engine runs here, so every statement counted is the streams'.
"""

from __future__ import annotations

import json
import threading
import time

import httpx

from stepline.engine.events import new_id
from stepline.engine.operations import Operations
from stepline.engine.routing import Routing
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings
from stepline.store.base import NewRun, Store
from stepline.store.postgres import PostgresStore
from tests.loopback import Servers
from tests.server.conftest import sse_events

STREAMS = 20
IDLE_SECONDS = 2.0


class _Listener(threading.Thread):
    """One client of the run's stream: records what it got, until `end`."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.got: list[tuple[str, str]] = []
        self.first = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=30) as response:
                for event, data in sse_events(response.iter_lines()):
                    self.got.append((event, data))
                    self.first.set()
                    if event == "end":
                        return
        except httpx.HTTPError as exc:  # the server stopped first (the test failed): said below
            self.got.append(("error", repr(exc)))


def test_many_streams_of_one_run_cost_one_feed_and_one_poll_per_change(store: Store) -> None:
    ops = Operations(store)
    run_id = store.create_run(
        NewRun(id=new_id(), function_id="fn", trigger_kind="manual"), [], ops.clock.now(), Routing()
    )
    servers = Servers()
    url = servers.start(create_app(ops, AuthSettings()))
    listeners = [_Listener(f"{url}/v1/runs/{run_id}/stream") for _ in range(STREAMS)]
    try:
        for listener in listeners:
            listener.start()
        for listener in listeners:
            assert listener.first.wait(10), "a stream sent nothing"

        before = store.tally.statements
        time.sleep(IDLE_SECONDS)
        idle = store.tally.statements - before
        # SQLite: the feed's mark, twice a second, and nothing else. PostgreSQL's mark moves
        # with any write on the server (other databases' too): then the run is polled once per
        # move, shared by the twenty streams, where their own polls would be 80 or more.
        assert idle <= (40 if isinstance(store, PostgresStore) else 6), idle

        before = store.tally.statements
        ops.cancel(run_id, by="test")
        for listener in listeners:
            listener.join(timeout=10)
            assert [event for event, _ in listener.got] == ["run", "run", "end"]
            assert json.loads(listener.got[1][1])["status"] == "CANCELLED"
        changed = store.tally.statements - before
        # The cancel's own statements, the marks, and one shared poll of the run (a handful
        # of reads), where twenty polls would be 60+.
        assert changed < 40, changed
    finally:
        servers.stop()
        for listener in listeners:
            listener.join(timeout=10)
