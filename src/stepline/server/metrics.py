"""`GET /metrics` for Prometheus: this process's counters, and the deployment's gauges.

The counters are the process's own (`engine.metrics`: the runs and steps its worker executed,
the events it accepted, the requests it refused, its streams, its store's errors). The gauges
describe the whole deployment and are read from the database when scraped, by a few grouped
reads bounded by the queue's indexes (`Store.backlog`) and the small registry and workers
tables: queue depth and lag per function, runs held back by flow control, workers and their
slots. Only the server reports them, so that summing over every process scraped counts them
once. The endpoint needs the API token when the server has one, and is open when it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepline import errors
from stepline.engine.metrics import Metrics
from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_token
from stepline.store.base import Backlog, WorkerRecord
from stepline.store.insights import CONCURRENCY

# Flow control's labels for the runs it holds back (`Backlog.waiting`'s detail codes).
WAITING_REASONS = {
    "THROTTLED": "throttle",
    "DEBOUNCING": "debounce",
    "BATCHING": "batch",
    CONCURRENCY: "concurrency",
}
# The refusals counted, by status; anything else (2xx, 3xx, 500) is not a refusal.
REJECTION_REASONS = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "too_many_requests",
    503: "unavailable",
}


class Gauges:
    """The deployment's gauges, read from the database at each scrape (a collector)."""

    def __init__(self, operations: Operations) -> None:
        self._ops = operations

    def collect(self) -> Iterator[Metric]:
        """`stepline_store_up`, then (when the database answered) the queue and worker gauges."""
        store, now = self._ops.store, self._ops.clock.now()
        try:
            backlog = store.backlog(now)
            functions = sorted({fn.id for fn in store.list_functions()})
            workers = store.list_workers()
        except errors.StoreError:
            yield _gauge("stepline_store_up", "Whether the server's database answered.", 0)
            return
        yield _gauge("stepline_store_up", "Whether the server's database answered.", 1)
        yield from _backlog_gauges(backlog, functions, now)
        yield from _worker_gauges(workers, now)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _backlog_gauges(
    backlog: list[Backlog], functions: list[str], now: datetime
) -> Iterator[GaugeMetricFamily]:
    """Per function (every registered one, zeros included): depth, lag, flow control, steps."""
    depth = GaugeMetricFamily(
        "stepline_queue_depth",
        "Runs due and not held by a live lease: waiting for a worker (or a concurrency slot).",
        labels=["function"],
    )
    lag = GaugeMetricFamily(
        "stepline_queue_oldest_due_age_seconds",
        "How long the longest-waiting of those runs has been due (0 without any): the lag.",
        labels=["function"],
    )
    waiting = GaugeMetricFamily(
        "stepline_runs_waiting",
        "Runs held back by flow control, by reason: throttle, debounce, batch, concurrency.",
        labels=["function", "reason"],
    )
    in_step = GaugeMetricFamily(
        "stepline_step_in_flight_max_age_seconds",
        "How long the longest-running step in flight has been executing (0 without any).",
        labels=["function"],
    )
    found = {item.function_id: item for item in backlog}
    for function_id in sorted({*functions, *found}):
        item = found.get(function_id, Backlog(function_id=function_id))
        depth.add_metric([function_id], item.due)
        lag.add_metric([function_id], _age(item.oldest_due_at, now))
        for code, reason in WAITING_REASONS.items():
            waiting.add_metric([function_id, reason], item.waiting.get(code, 0))
        in_step.add_metric([function_id], _age(item.step_since, now))
    yield from (depth, lag, waiting, in_step)


def _age(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def _worker_gauges(workers: list[WorkerRecord], now: datetime) -> Iterator[GaugeMetricFamily]:
    alive = [worker for worker in workers if worker.alive(now)]
    yield _gauge(
        "stepline_workers_alive",
        "Workers whose claim loop reported within three heartbeats and that are not stopping.",
        len(alive),
    )
    slots = GaugeMetricFamily(
        "stepline_worker_slots",
        "Slots of the live workers, busy (executing a run) or free.",
        labels=["state"],
    )
    busy = sum(min(worker.inflight, worker.slots) for worker in alive)
    slots.add_metric(["busy"], busy)
    slots.add_metric(["free"], sum(worker.slots for worker in alive) - busy)
    yield slots


class _Scrape:
    """What `/metrics` serves: several collectors' metrics, in turn."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


class MetricsEndpoint:
    """`GET /metrics`: the process's metrics and the deployment's gauges, in the format asked.

    Prometheus's text format, or OpenMetrics when the scraper asks for it (`Accept`).
    """

    def __init__(self, metrics: Metrics, operations: Operations, auth: AuthSettings) -> None:
        # The gauges first: the process's counters then include the scrape's own reads.
        self._scrape = _Scrape(Gauges(operations), metrics)
        self._auth = auth

    async def serve(self, request: Request) -> Response:
        """The handler: the API token when the server has one (open when it is open)."""
        await run_in_threadpool(check_token, self._auth, request)  # any token that can read
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        body = await run_in_threadpool(encode, self._scrape)
        return Response(body, media_type=content_type, headers={"cache-control": "no-store"})


def _metrics_of(app: Starlette) -> Metrics | None:
    metrics: Metrics | None = getattr(app.state, "metrics", None)
    return metrics


def count_events(request: Request, via: str, count: int) -> None:
    """Count `count` events accepted through `via` ("intake", "api") by the request's server."""
    metrics = _metrics_of(request.app)
    if metrics is not None:
        metrics.events_accepted(via, count)


def stream_open(app: Starlette) -> AbstractContextManager[object]:
    """Counts an open server-sent event stream of `app` while inside."""
    metrics = _metrics_of(app)
    return nullcontext() if metrics is None else metrics.sse_clients.track_inprogress()


def _surface(path: str) -> str:
    if path.startswith("/e/"):
        return "intake"
    if path.startswith(("/v0/", "/v1/", "/fn/", "/metrics")):
        return "api"
    return "dashboard"


class RejectionCounter:
    """ASGI middleware: counts the requests answered with a refusal, by surface and reason.

    Outermost, so that it sees every answer: the handlers' errors, the cross-site guard's,
    404 and 405 alike. One dictionary lookup per response.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._rejected = metrics.requests_rejected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count its answer if it is a refusal."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                reason = REJECTION_REASONS.get(message["status"])
                if reason is not None:
                    self._rejected.labels(_surface(scope["path"]), reason).inc()
            await send(message)

        await self.app(scope, receive, counted)
