"""The Python SDK's `send` and `send_sync` through Stepline's intake (protocol §8.1-8.3).

Retries carry the request's `X-Inngest-Event-Id-Seed`, so a retried request is stored once and
answered with the first attempt's ids; events of 1 MiB go in batches; the JS SDK v4's `meta`
is taken; reserved names and bad batches are refused whole.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import inngest
import pytest
from inngest._internal.errors import SendEventsError

from stepline._blocking import run_to_end
from stepline.engine.event_seed import seeded_ids
from stepline.server.intake import MAX_INTAKE_BODY_BYTES, SEED_HEADER
from tests.inngest.conftest import Stepline

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]
MIB = 1024 * 1024
SEED = "1700000000000,AAECAwQFBgcICQ=="
SEEDED = ["01HF7YAT00000G40R40M30E20A", "01HF7YAT00000G40R40M30E20B"]  # protocol §8.3


@dataclass
class LossyProxy:
    """A loopback proxy to Stepline that loses the answer to the first request it forwards.

    Every request reaches Stepline; the first one's sender gets a 500 instead of the answer,
    as when a connection drops after the server committed. The SDK then retries.
    """

    url: str
    seeds: list[str | None] = field(default_factory=list)


@contextmanager
def lossy_proxy(target: str) -> Iterator[LossyProxy]:
    """Serve a `LossyProxy` to `target` on a free loopback port until the block ends."""
    lock = threading.Lock()

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            keep = ("content-type", "user-agent", "x-inngest-sdk", SEED_HEADER)
            headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
            answer = httpx.post(f"{target}{self.path}", content=body, headers=headers, timeout=30)
            with lock:
                proxy.seeds.append(self.headers.get(SEED_HEADER))
                lost = len(proxy.seeds) == 1
            status, content = (500, b"{}") if lost else (answer.status_code, answer.content)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    proxy = LossyProxy(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def sdk(stepline: Stepline) -> Iterator[Callable[..., inngest.Inngest]]:
    """Make SDK clients of the server (events to `events_to` if given), closed after the test.

    The SDK never closes its HTTP clients; left open, their sockets warn when collected.
    """
    made: list[inngest.Inngest] = []

    def make(app_id: str, events_to: str | None = None) -> inngest.Inngest:
        client = inngest.Inngest(
            app_id=app_id,
            api_base_url=stepline.url,
            event_api_base_url=events_to or stepline.url,
            is_production=False,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client._http_client._http_client_sync.close()


def send_async(client: inngest.Inngest, events: list[inngest.Event]) -> list[str]:
    """`await client.send(events)` in a loop of its own; the client's connections closed after."""

    async def send() -> list[str]:
        try:
            return await client.send(events)
        finally:
            await client._http_client._http_client.aclose()

    return run_to_end(send())  # its own thread: this one may hold Playwright's loop


def listed(stepline: Stepline, name: str) -> list[dict[str, Any]]:
    """`GET /v1/events?name=`: the stored events of that name."""
    response = stepline.http.get("/v1/events", params={"name": name})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


@pytest.mark.parametrize("how", ["send_sync", "send"])
def test_a_send_retried_after_a_lost_answer_is_stored_once_with_the_same_ids(
    stepline: Stepline, py_app: Serve, sdk: Callable[..., inngest.Inngest], how: str
) -> None:
    client = sdk("retried")

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="t/retried"))
    def echo(ctx: inngest.ContextSync) -> Any:
        return ctx.event.data["n"]

    stepline.sync(py_app(client, [echo]))
    events = [inngest.Event(name="t/retried", data={"n": n}) for n in (1, 2)]
    with lossy_proxy(stepline.url) as proxy:
        sender = sdk("sender", events_to=proxy.url)
        ids = sender.send_sync(events) if how == "send_sync" else send_async(sender, events)

    assert len(proxy.seeds) == 2 and proxy.seeds[0] == proxy.seeds[1] is not None
    assert len(set(ids)) == 2 and ids == seeded_ids(proxy.seeds[0], 2)
    # Stored once (Inngest's dev server stores each attempt: 4 rows, 2 distinct ids).
    assert sorted(e["internal_id"] for e in listed(stepline, "t/retried")) == sorted(ids)
    for n, event_id in enumerate(ids, start=1):
        run = stepline.run_of(event_id)
        assert run.status == "COMPLETED" and json.loads(run.output or "null") == n


def test_the_sdks_request_sent_again_gets_the_same_ids_and_stores_nothing_more(
    stepline: Stepline, sdk: Callable[..., inngest.Inngest]
) -> None:
    sender = sdk("resender")
    request = sender._build_send_request(  # the request `send` makes, and makes again
        [inngest.Event(name="t/again", data={"n": 1}), inngest.Event(name="t/again", id="o-7")]
    )
    assert not isinstance(request, Exception)
    with httpx.Client(timeout=30) as http:
        first, second = (http.send(request).json() for _ in range(2))

    assert first == second == {"ids": seeded_ids(request.headers[SEED_HEADER], 2), "status": 200}
    stored = listed(stepline, "t/again")
    assert sorted(e["internal_id"] for e in stored) == sorted(first["ids"])
    assert {e["id"] for e in stored} == {first["ids"][0], "o-7"}


def test_the_protocols_worked_example_and_a_malformed_seed(stepline: Stepline) -> None:
    events = [{"name": "t/seeded"}, {"name": "t/seeded", "data": {"n": 2}}]
    for _ in range(2):
        answer = stepline.http.post("/e/k", json=events, headers={SEED_HEADER: SEED})
        assert answer.json() == {"ids": SEEDED, "status": 200}
    assert sorted(e["internal_id"] for e in listed(stepline, "t/seeded")) == SEEDED

    unseeded = [
        stepline.http.post("/e/k", json=events, headers={SEED_HEADER: seed}).json()["ids"]
        for seed in ("1700000000000,AAECAwQFBgcICQ", "garbage")  # bad padding; no comma
    ]
    assert len({*unseeded[0], *unseeded[1]}) == 4  # random ids: each request stored anew
    assert len(listed(stepline, "t/seeded")) == 6


def test_eight_events_of_one_mib_in_one_send_reach_a_batch_function(
    stepline: Stepline, py_app: Serve, sdk: Callable[..., inngest.Inngest]
) -> None:
    client = sdk("big-batch")
    seen: list[list[int]] = []

    @client.create_function(
        fn_id="batched",
        trigger=inngest.TriggerEvent(event="t/big-batch"),
        batch_events=inngest.Batch(max_size=8, timeout=datetime.timedelta(seconds=10)),
        retries=0,
    )
    def batched(ctx: inngest.ContextSync) -> int:
        seen.append([len(str(event.data["msg"])) for event in ctx.events])
        return len(ctx.events)

    stepline.sync(py_app(client, [batched]))
    events = [inngest.Event(name="t/big-batch", data={"msg": "a" * MIB}) for _ in range(8)]
    ids = client.send_sync(events)

    assert len(set(ids)) == 8
    run = stepline.run_of(ids[0], timeout=60)
    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == 8 and seen[-1] == [MIB] * 8


def test_an_event_past_3_mib_or_a_request_past_the_bound_is_413_and_stores_nothing(
    stepline: Stepline,
) -> None:
    largest = {"name": "t/large", "data": {"msg": "a" * (3 * MIB - 100)}}
    assert stepline.http.post("/e/k", json=largest).json()["status"] == 200
    too_large = stepline.http.post("/e/k", json={"name": "t/large", "data": {"msg": "a" * 3 * MIB}})
    assert too_large.status_code == 413
    assert too_large.json() == {
        "ids": [],
        "status": 413,
        "error": "event.data: event is larger than 3 MiB",
        "field": "event.data",
    }
    many = [{"name": "t/large", "data": {"msg": "a" * (2 * MIB)}}] * 8  # 16 MiB and more
    refused = stepline.http.post("/e/k", json=many)
    assert refused.status_code == 413 and refused.json()["ids"] == []
    assert str(MAX_INTAKE_BODY_BYTES) in refused.json()["error"]
    assert len(listed(stepline, "t/large")) == 1


def test_js_v4_meta_is_taken_and_data_inngest_is_dropped(stepline: Stepline) -> None:
    js = {"user-agent": "inngest-js:v4.24.0", "x-inngest-sdk": "inngest-js:v4.24.0"}
    event = {
        "name": "t/meta",
        "data": {"a": 1, "_inngest": {"fn_id": "someone-else", "correlation_id": "x"}},
        "ts": 1_750_000_000_000,
        "meta": {"sessions": {"checkout": "s-1"}},
    }
    answer = stepline.http.post("/e/k", json=[event], headers=js)
    assert answer.status_code == 200 and answer.json()["status"] == 200
    [stored] = listed(stepline, "t/meta")
    assert stored["data"] == {"a": 1} and "meta" not in stored

    bad = stepline.http.post("/e/k", json={"name": "t/meta", "meta": "sessions"})
    assert bad.status_code == 400 and bad.json()["field"] == "event.meta"
    # Stepline's own API has no `meta`.
    own = stepline.http.post("/v1/events", json={"name": "t/meta", "meta": {}})
    assert own.status_code == 400 and "meta" in own.json()["error"]


@pytest.mark.parametrize("name", ["inngest/function.failed", "stepline/function.failed"])
def test_reserved_names_are_refused_through_the_sdk_and_nothing_is_stored(
    stepline: Stepline, sdk: Callable[..., inngest.Inngest], name: str
) -> None:
    client = sdk("sender")
    events = [inngest.Event(name="t/fine"), inngest.Event(name=name)]
    for send in (client.send_sync, lambda e: send_async(client, e)):
        with pytest.raises(SendEventsError) as caught:
            send(events)
        assert caught.value.ids == [] and "events[1].name" in str(caught.value)
    assert listed(stepline, "t/fine") == []


def test_a_batch_with_a_bad_event_is_refused_whole(
    stepline: Stepline, sdk: Callable[..., inngest.Inngest]
) -> None:
    """Inngest stores the events before a bad one; Stepline stores none (see docs/api.md)."""
    client = sdk("sender")
    events = [inngest.Event(name="t/ok"), inngest.Event(name=""), inngest.Event(name="")]
    with pytest.raises(SendEventsError) as caught:
        client.send_sync(events)
    assert caught.value.ids == [] and "events[1].name" in str(caught.value)
    assert listed(stepline, "t/ok") == []
