"""The workers page: each worker's slots, runs in flight, heartbeat and health, live over SSE.

The data is the workers' own reports (`Store.list_workers`, as `GET /v1/workers`) and the
queue's leases (`Store.leased_runs`): which runs each worker holds. A dead worker's runs stay
under it until another worker reclaims them when their lease expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from stepline._durations import format_duration
from stepline.engine import views
from stepline.engine.operations import Operations
from stepline.server import dashboard_models as models
from stepline.server import sse
from stepline.server.dashboard_models import function_page_href
from stepline.server.templating import page, render
from stepline.store.base import LeasedRun, WorkerRecord

Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Awaitable[Response]]
Context = Callable[..., dict[str, Any]]
STREAM_URL = "/workers/stream"


@dataclass(frozen=True, kw_only=True, slots=True)
class InFlight:
    """A run a worker holds: linked, with its function."""

    run_id: str
    href: str
    function_id: str
    function_href: str


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerRow:
    """A worker as the page shows it."""

    id: str
    host: str
    state: str  # HEALTHY, ABANDONED SLOTS, DRAINING or DEAD
    state_class: str
    slots_text: str  # "2 busy, 6 free of 8"
    busy_percent: str  # the slot meter's width
    abandoned: str | None
    runs: list[InFlight]
    heartbeat: models.Moment
    heartbeat_age: str
    started: models.Moment
    functions: int


def _state(worker: WorkerRecord, now: datetime) -> tuple[str, str]:
    if worker.alive(now):
        if worker.abandoned:
            return "ABANDONED SLOTS", "status status-paused"
        return "HEALTHY", "status status-completed"
    silent = (now - worker.heartbeat_at).total_seconds()
    if worker.stopping and silent <= 3 * worker.heartbeat_seconds:
        return "DRAINING", "status status-queued"
    return "DEAD", "status status-failed"


def worker_row(worker: WorkerRecord, runs: Sequence[LeasedRun], now: datetime) -> WorkerRow:
    """A worker's row; `runs` are the runs whose lease it holds."""
    busy = min(worker.inflight, worker.slots)
    state, state_class = _state(worker, now)
    age = max(0.0, (now - worker.heartbeat_at).total_seconds())
    return WorkerRow(
        id=worker.id,
        host=f"{worker.hostname} (pid {worker.pid})",
        state=state,
        state_class=state_class,
        slots_text=f"{busy} busy, {worker.slots - busy} free of {worker.slots}",
        busy_percent=f"{100 * busy / worker.slots:.0f}%" if worker.slots else "0%",
        abandoned=views.abandoned_text(worker.abandoned) if worker.abandoned else None,
        runs=[
            InFlight(
                run_id=run.run_id,
                href=models.run_href(run.run_id),
                function_id=run.function_id,
                function_href=function_page_href(run.function_id),
            )
            for run in runs
        ],
        heartbeat=models.moment(worker.heartbeat_at),
        heartbeat_age=f"{format_duration(age)} ago",
        started=models.moment(worker.started_at),
        functions=len(worker.functions),
    )


class WorkerPages:
    """The workers page and its stream over one `Operations`."""

    def __init__(self, operations: Operations, *, guard: Guard, context: Context) -> None:
        self.ops = operations
        self._guard = guard
        self._context = context

    def _read(self) -> tuple[list[WorkerRecord], list[LeasedRun]]:
        return self.ops.store.list_workers(), self.ops.store.leased_runs()

    def _rows(
        self, workers: Sequence[WorkerRecord], leased: Sequence[LeasedRun]
    ) -> list[WorkerRow]:
        now = self.ops.clock.now()
        return [worker_row(w, [r for r in leased if r.worker_id == w.id], now) for w in workers]

    async def page(self, request: Request) -> Response:
        """GET /workers: every registered worker, live."""

        async def inner(request: Request) -> Response:
            rows = self._rows(*await run_in_threadpool(self._read))
            context = self._context(
                request, "workers", "Workers", workers=rows, stream_url=STREAM_URL
            )
            return page("workers.html", context)

        return await self._guard(request, inner)

    async def stream(self, request: Request) -> Response:
        """GET /workers/stream: SSE `workers` events with fresh rows when they change."""

        async def inner(request: Request) -> Response:
            def poll() -> sse.Snapshot:
                workers, leased = self._read()
                rows = self._rows(workers, leased)
                return sse.Snapshot(
                    key=repr(rows),
                    render=lambda: {"workers": render("_workers_rows.html", {"workers": rows})},
                )

            return sse.stream(poll, subject="workers")

        return await self._guard(request, inner, stream=True)
