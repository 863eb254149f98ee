"""`Engine`: worker, scheduler and operations over one store, in one process."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from stepline import errors
from stepline.engine.clock import Clock, SystemClock
from stepline.engine.executor import Executor
from stepline.engine.inngest.driver import HttpDriver, HttpSettings
from stepline.engine.inngest.functions import SdkFunctions
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.metrics import Metrics
from stepline.engine.operations import Operations, RunDetail
from stepline.engine.outputs import OutputLimits
from stepline.engine.retention import RetentionSettings
from stepline.engine.retry import RetryPolicy
from stepline.engine.scheduler import Scheduler
from stepline.engine.worker import RunObserver, Worker, WorkerSettings
from stepline.sdk.app import App, Function
from stepline.store import open_store
from stepline.store.base import FunctionRecord, RunFilter, RunRecord, Store

DEFAULT_DB = Path(".stepline") / "stepline.db"
logger = logging.getLogger("stepline.engine")


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """Tuning for an `Engine`: worker slots and leases, retry backoff, the scheduler.

    Attributes:
        replace_exhausted_worker: When all the worker's slots are held by abandoned steps
            (steps still executing although their run was cancelled or timed out), start a
            fresh worker in this process; the stuck threads are left behind. `stepline
            worker` turns this off and exits instead, for its supervisor to restart it.
        signing_keys: Sign the calls to SDK apps (and verify their signed answers); None
            for apps in dev mode, as with the Inngest dev server.
        http: Limits of the calls to SDK apps.
        observer: Hears of each run the worker starts and ends (`stepline dev`'s run lines).
        retention: The default retention of ended runs (30 days) and how the scheduler
            prunes them.
        outputs: Above what size step and run outputs go to the blob store (256 KiB), and
            above what size they fail their step (64 MiB).
    """

    worker: WorkerSettings = field(default_factory=WorkerSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    scheduler: bool = True
    scheduler_poll_seconds: float = 1.0
    replace_exhausted_worker: bool = True
    signing_keys: SigningKeys | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    observer: RunObserver | None = None
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    outputs: OutputLimits = field(default_factory=OutputLimits)


def collect_functions(apps: Iterable[App]) -> dict[str, Function]:
    """All functions of the apps by id; two functions may not share an id."""
    functions: dict[str, Function] = {}
    for app in apps:
        for fn in app.functions.values():
            if fn.id in functions:
                raise errors.ConfigurationError(
                    f"function id {fn.id!r} is used by apps {functions[fn.id].app_id!r} "
                    f"and {app.id!r}; function ids must be unique"
                )
            functions[fn.id] = fn
    return functions


class Engine:
    """Runs the functions of `apps`: claims and executes their runs, fires their cron ticks.

    Args:
        apps: One `App` or several.
        db: A SQLite file path, a database URL, or a `Store` (default `.stepline/stepline.db`).
        clock: Where time comes from (tests pass a `FakeClock`).
        settings: Worker, retry and scheduler tuning.
        upgrade: Apply schema migrations when opening `db` (default True).

    Use as a context manager, or call `start()` and `stop()`.

    Attributes:
        metrics: This engine's Prometheus metrics (runs, steps, its store's tally), in a
            registry of its own; `create_app(..., metrics=engine.metrics)` serves them.
    """

    def __init__(
        self,
        apps: App | Sequence[App],
        *,
        db: str | Path | Store = DEFAULT_DB,
        clock: Clock | None = None,
        settings: EngineSettings | None = None,
        upgrade: bool = True,
    ) -> None:
        self.apps = [apps] if isinstance(apps, App) else list(apps)
        self.functions = collect_functions(self.apps)
        self.store = open_store(db) if isinstance(db, str | Path) else db
        if upgrade:
            self.store.upgrade()
        self.clock = clock or SystemClock()
        self.settings = settings or EngineSettings()
        self.metrics = Metrics(self.store.tally)
        self.operations = Operations(
            self.store, self.clock, retention=self.settings.retention.default
        )
        self.sdk_functions = SdkFunctions(self.store)
        self.operations.registry_listeners.append(self.sdk_functions.invalidate)
        self.executor = self._new_executor()
        self._lock = threading.Lock()
        self.worker = self._new_worker()
        self.scheduler = Scheduler(
            self.store,
            self.functions.values(),
            self.clock,
            poll_seconds=self.settings.scheduler_poll_seconds,
            routing=self.operations.routing,
            sdk_functions=self.sdk_functions,
            retention=self.settings.retention,
        )
        self._started = False

    def register(self) -> None:
        """Write the apps' functions to the registry (done by `start`)."""
        now = self.clock.now()
        for app in self.apps:
            records = [
                FunctionRecord(id=fn.id, app_id=app.id, name=fn.name, config=fn.config())
                for fn in app.functions.values()
            ]
            self.store.sync_functions(app.id, records, now)

    def start(self) -> Engine:
        """Register the functions and start the worker and scheduler threads."""
        self.register()
        with self._lock:
            self.worker.start()
            if self.settings.scheduler:
                self.scheduler.start()
            self._started = True
        return self

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming, let running replays finish (up to the grace period), close the store."""
        with self._lock:
            if self._started:
                self.scheduler.stop()
                self.worker.stop(grace_seconds)
                self._started = False
        self.store.close()

    def _new_executor(self) -> Executor:
        """An executor for the apps' functions and SDK apps' ones (over HTTP)."""
        draining = threading.Event()
        http = HttpDriver(
            store=self.store,
            clock=self.clock,
            routing=self.operations.routing,
            functions=self.sdk_functions,
            policy=self.settings.retry,
            draining=draining,
            keys=self.settings.signing_keys,
            settings=self.settings.http,
            metrics=self.metrics,
            output_limits=self.settings.outputs,
        )
        return Executor(
            store=self.store,
            functions=self.functions,
            clock=self.clock,
            routing=self.operations.routing,
            policy=self.settings.retry,
            rng=random.random,
            draining=draining,
            http=http,
            metrics=self.metrics,
            output_limits=self.settings.outputs,
        )

    def _new_worker(self) -> Worker:
        return Worker(
            self.store,
            self.executor,
            self.clock,
            self.settings.worker,
            on_exhausted=self._worker_exhausted,
            observer=self.settings.observer,
            metrics=self.metrics,
        )

    def _worker_exhausted(self) -> None:
        """Replace a worker whose slots are all held by abandoned steps, if so configured."""
        if not self.settings.replace_exhausted_worker:
            return
        with self._lock:
            if not self._started or not self.worker.exhausted.is_set():
                return
            old = self.worker.id
            # The stuck replays keep the old executor; its `draining` flag stays set for them.
            self.executor = self._new_executor()
            self.worker = self._new_worker()
            try:
                self.worker.start()
            except errors.StoreError as exc:
                logger.error("worker %s gave up and no new worker could start: %s", old, exc)
                return
        logger.warning(
            "worker %s gave up (all slots held by abandoned steps); started worker %s "
            "(the stuck threads are left running)",
            old,
            self.worker.id,
        )

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- operations ----------------------------------------------------------------------------

    def send(self, events: Any) -> list[str]:
        """Send one event or a list (`{name, data, id?, ts?}`); returns their ids."""
        return self.operations.send(events)

    def invoke(self, function_id: str, data: dict[str, Any] | None = None) -> str:
        """Start a run of a function now with `data`; returns the run id."""
        return self.operations.invoke(function_id, data)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run."""
        return self.operations.cancel(run_id)

    def replay(self, run_id: str) -> str:
        """Start a new run with the same trigger; returns its id."""
        return self.operations.replay(run_id)

    def wait_for_run(self, run_id: str, timeout_seconds: float = 60.0) -> RunRecord:
        """Block until the run ends."""
        return self.operations.wait_for_run(run_id, timeout_seconds)

    def get_run(self, run_id: str) -> RunDetail:
        """A run with its steps, attempts and logs."""
        return self.operations.run_detail(run_id)

    def list_runs(self, run_filter: RunFilter | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        return self.operations.list_runs(run_filter or RunFilter())
