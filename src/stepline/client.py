"""`Client`: send events and inspect, wait for, cancel, replay and invoke runs.

Over HTTP (`Client(url, ...)`) or directly on a database (`Client.local(db)`); both return the
same JSON-shaped dicts as the REST API.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, TypedDict

import httpx
from typing_extensions import Unpack

from stepline import errors
from stepline._blocking import run_to_end
from stepline._client_access import AccessMethods, HttpAccess, LocalAccess
from stepline._client_outputs import HttpOutputs, LocalOutputs, OutputBackend, OutputMethods
from stepline.engine import apps, views
from stepline.engine.inngest.sync import SyncFailed, syncer_for
from stepline.engine.operations import Operations
from stepline.store import open_store
from stepline.store.base import RunFilter, RunStatus, TriggerKind

END_STATUSES = ("COMPLETED", "FAILED", "CANCELLED")


class _Backend(Protocol):
    def send(self, events: Any) -> list[str]: ...
    def invoke(self, function_id: str, data: dict[str, Any] | None, dry_run: bool) -> str: ...
    def get_run(self, run_id: str) -> dict[str, Any]: ...
    def list_runs(self, query: dict[str, Any]) -> list[dict[str, Any]]: ...
    def runs_for_event(self, event_id: str) -> list[dict[str, Any]]: ...
    def cancel(self, run_id: str, reason: str | None) -> dict[str, Any]: ...
    def replay(self, run_id: str, reason: str | None) -> str: ...
    def rerun(self, run_id: str, request: dict[str, Any]) -> str: ...
    def cancel_runs(self, selection: dict[str, Any], reason: str | None) -> int: ...
    def replay_runs(self, selection: dict[str, Any], reason: str | None) -> int: ...
    def preview_runs(self, action: str, selection: dict[str, Any]) -> dict[str, Any]: ...
    def functions(self) -> list[dict[str, Any]]: ...
    def set_paused(self, function_id: str, paused: bool, reason: str | None) -> dict[str, Any]: ...
    def get_event(self, event_id: str) -> dict[str, Any]: ...
    def list_events(self, query: dict[str, Any]) -> dict[str, Any]: ...
    def workers(self) -> list[dict[str, Any]]: ...
    def apps(self) -> list[dict[str, Any]]: ...
    def sync_app(self, url: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


class _Local:
    """Reads and writes the database directly, through the engine's operations."""

    def __init__(self, db: str | Path) -> None:
        store = open_store(db)
        store.upgrade()
        self._ops = Operations(store)

    def send(self, events: Any) -> list[str]:
        return self._ops.send(events)

    def invoke(self, function_id: str, data: dict[str, Any] | None, dry_run: bool) -> str:
        return self._ops.invoke(function_id, data, by="client", dry_run=dry_run)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return views.run_detail_view(self._ops.run_detail(run_id))

    def list_runs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        return [views.run_view(r) for r in self._ops.list_runs(RunFilter(**query))]

    def cancel_runs(self, selection: dict[str, Any], reason: str | None) -> int:
        return self._ops.cancel_matching(RunFilter(**selection), by="client", reason=reason)

    def replay_runs(self, selection: dict[str, Any], reason: str | None) -> int:
        return self._ops.replay_matching(RunFilter(**selection), by="client", reason=reason)

    def preview_runs(self, action: str, selection: dict[str, Any]) -> dict[str, Any]:
        count, sample = self._ops.preview_matching(
            RunFilter(**selection), active_only=action == "cancel"
        )
        return {"count": count, "sample": [views.run_view(run) for run in sample]}

    def runs_for_event(self, event_id: str) -> list[dict[str, Any]]:
        return [views.run_view(r) for r in self._ops.runs_for_event(event_id)]

    def cancel(self, run_id: str, reason: str | None) -> dict[str, Any]:
        return views.run_view(self._ops.cancel(run_id, by="client", reason=reason))

    def replay(self, run_id: str, reason: str | None) -> str:
        return self._ops.replay(run_id, by="client", reason=reason)

    def rerun(self, run_id: str, request: dict[str, Any]) -> str:
        return self._ops.rerun(run_id, by="client", **request)

    def functions(self) -> list[dict[str, Any]]:
        stats, cron, now = (
            self._ops.function_stats(),
            self._ops.cron_states(),
            self._ops.clock.now(),
        )
        return [
            views.function_view(
                f, stats.get(f.id), now, cron.get(f.id), retention=self._ops.retention
            )
            for f in self._ops.list_functions()
        ]

    def set_paused(self, function_id: str, paused: bool, reason: str | None) -> dict[str, Any]:
        if paused:
            fn = self._ops.pause(function_id, by="client", reason=reason)
        else:
            fn = self._ops.resume(function_id, by="client")
        stats, cron = self._ops.function_stats(), self._ops.cron_states()
        return views.function_view(
            fn, stats.get(fn.id), cron=cron.get(fn.id), retention=self._ops.retention
        )

    def get_event(self, event_id: str) -> dict[str, Any]:
        return views.event_view(self._ops.get_event(event_id))

    def list_events(self, query: dict[str, Any]) -> dict[str, Any]:
        events, cursor = self._ops.events_page(
            query["name"],
            query["limit"],
            query["before"],
            received_after=query["received_after"],
            received_before=query["received_before"],
            name_prefix=query["name_prefix"],
        )
        return {"data": [views.event_view(e) for e in events], "next_cursor": cursor}

    def workers(self) -> list[dict[str, Any]]:
        return [views.worker_view(w) for w in self._ops.store.list_workers()]

    def apps(self) -> list[dict[str, Any]]:
        return apps.app_views(self._ops.store)

    def sync_app(self, url: str) -> dict[str, Any]:
        syncer = syncer_for(self._ops, None)
        try:
            app = run_to_end(apps.sync_by_url(syncer, self._ops.store, url))
        except SyncFailed as exc:
            raise errors.ClientError(str(exc), status=502) from None
        return apps.app_view(self._ops.store, app)

    def close(self) -> None:
        self._ops.store.close()


_ERRORS: dict[int, type[errors.SteplineError]] = {
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
}


class RunCriteria(TypedDict, total=False):
    """The criteria of a bulk cancel or replay (every one given must hold)."""

    function_id: str
    status: RunStatus
    event_id: str
    trigger_kind: TriggerKind
    dry_run: bool
    error_name: str
    created_after: datetime
    created_before: datetime
    q: str


def _selection(criteria: RunCriteria) -> dict[str, Any]:
    return dict(criteria)


def _params(query: dict[str, Any]) -> dict[str, Any]:
    """Query parameters: None dropped, datetimes as RFC 3339."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in query.items()
        if v is not None
    }


def _body(response: httpx.Response) -> Any:
    """The answer's JSON; an error's text as `{"error": ...}` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return {"error": response.text or response.reason_phrase}


def refusal(status: int, body: Any) -> errors.SteplineError:
    """The error for an HTTP error answer (`{"error": message, ...}`)."""
    message = str(body.get("error") or f"HTTP {status}")
    if status in (400, 413):
        return errors.InvalidInput(message)
    if status == 409:
        return errors.Conflict(message, run_id=body.get("run_id"))
    error_type = _ERRORS.get(status)
    if error_type is not None:
        return error_type(message)
    return errors.ClientError(message, status=status)


class _Http:
    """Talks to a Stepline server's REST API and event intake."""

    def __init__(self, url: str, event_key: str | None, token: str | None, timeout: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._event_key = event_key or "dev"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        body = _body(response)
        if response.status_code >= 400:
            raise refusal(response.status_code, body)
        return body

    def unreachable(self, exc: httpx.HTTPError) -> errors.ClientError:
        """The error of a request that got no answer."""
        return errors.ClientError(f"cannot reach Stepline at {self.url}: {exc}")

    def send(self, events: Any) -> list[str]:
        ids: list[str] = self._call("POST", f"/e/{self._event_key}", json=events)["ids"]
        return ids

    def invoke(self, function_id: str, data: dict[str, Any] | None, dry_run: bool) -> str:
        request = {"data": data or {}, **({"dry_run": True} if dry_run else {})}
        body = self._call("POST", f"/v1/functions/{function_id}/invoke", json=request)
        return str(body["data"]["run_id"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._call("GET", f"/v1/runs/{run_id}")["data"]
        return run

    def list_runs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._call("GET", "/v1/runs", params=_params(query))["data"]
        return runs

    def cancel_runs(self, selection: dict[str, Any], reason: str | None) -> int:
        request = _params({**selection, "reason": reason})
        body = self._call("POST", "/v1/runs/cancel", json=request)
        return int(body["data"]["affected"])

    def replay_runs(self, selection: dict[str, Any], reason: str | None) -> int:
        request = _params({**selection, "reason": reason})
        body = self._call("POST", "/v1/runs/replay", json=request)
        return int(body["data"]["affected"])

    def preview_runs(self, action: str, selection: dict[str, Any]) -> dict[str, Any]:
        body = self._call(
            "POST", f"/v1/runs/{action}", json={**_params(selection), "preview": True}
        )
        return {"count": body["data"]["count"], "sample": body["data"]["sample"]}

    def runs_for_event(self, event_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._call("GET", f"/v1/events/{event_id}/runs")["data"]
        return runs

    def cancel(self, run_id: str, reason: str | None) -> dict[str, Any]:
        request = _params({"reason": reason})
        run: dict[str, Any] = self._call("POST", f"/v1/runs/{run_id}/cancel", json=request)["data"]
        return run

    def replay(self, run_id: str, reason: str | None) -> str:
        request = _params({"reason": reason})
        return str(self._call("POST", f"/v1/runs/{run_id}/replay", json=request)["data"]["run_id"])

    def rerun(self, run_id: str, request: dict[str, Any]) -> str:
        body = self._call("POST", f"/v1/runs/{run_id}/rerun", json=request)
        return str(body["data"]["run_id"])

    def functions(self) -> list[dict[str, Any]]:
        functions: list[dict[str, Any]] = self._call("GET", "/v1/functions")["data"]
        return functions

    def set_paused(self, function_id: str, paused: bool, reason: str | None) -> dict[str, Any]:
        path = f"/v1/functions/{function_id}/{'pause' if paused else 'resume'}"
        request = _params({"reason": reason}) if paused else None
        fn: dict[str, Any] = self._call("POST", path, json=request)["data"]
        return fn

    def get_event(self, event_id: str) -> dict[str, Any]:
        event: dict[str, Any] = self._call("GET", f"/v1/events/{event_id}")["data"]
        return event

    def list_events(self, query: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = self._call("GET", "/v1/events", params=_params(query))
        return page

    def workers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/v1/workers")["data"]
        return found

    def apps(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/v1/apps")["data"]
        return found

    def sync_app(self, url: str) -> dict[str, Any]:
        app: dict[str, Any] = self._call("POST", "/v1/apps", json={"url": url})["data"]
        return app

    def close(self) -> None:
        self._http.close()


class Client(AccessMethods, OutputMethods):
    """Send events to Stepline and follow the runs they start (and, as admin, manage tokens).

    Args:
        url: The server, e.g. "http://127.0.0.1:8288".
        event_key: The event key for intake (not needed for `stepline dev`).
        token: The API token (not needed for `stepline dev`).
        timeout: Seconds to wait for each HTTP response.

    Every method raises `NotFound` for unknown ids, `InvalidInput` for rejected input,
    `Unauthorized` for a bad key or token, `Forbidden` for a token whose role does not allow
    the call, and `ClientError` when the server is unreachable.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8288",
        *,
        event_key: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        http = _Http(url, event_key, token, timeout)
        self._backend: _Backend = http
        self._access = HttpAccess(http._call)
        self._outputs: OutputBackend = HttpOutputs(
            http._http, lambda r: refusal(r.status_code, _body(r)), http.unreachable
        )

    @classmethod
    def local(cls, db: str | Path) -> Client:
        """A client working directly on a database file, such as `stepline dev`'s.

        Runs it starts are executed by whatever engine serves that database.
        """
        client = cls.__new__(cls)
        local = _Local(db)
        client._backend = local
        client._access = LocalAccess(local._ops)
        client._outputs = LocalOutputs(local._ops)
        return client

    def send(self, events: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
        """Send one event or a batch (`{name, data, id?, ts?}`); returns the event ids.

        A batch is accepted whole or not at all. An event whose `id` was seen in the last 24
        hours is not stored again and starts nothing; the first event's id is returned for it.
        """
        return self._backend.send(events)

    def send_event(
        self, name: str, data: dict[str, Any] | None = None, *, id: str | None = None
    ) -> str:
        """Send one event by name; returns its id."""
        event: dict[str, Any] = {"name": name, "data": data or {}}
        if id is not None:
            event["id"] = id
        return self._backend.send(event)[0]

    def invoke(
        self, function_id: str, data: dict[str, Any] | None = None, *, dry_run: bool = False
    ) -> str:
        """Start a run of a function now (trigger kind "manual"); returns the run id.

        `dry_run`: a dry run (`ctx.dry_run`; what it sends is recorded, not sent).

        Raises:
            NotFound: No such function.
            Conflict: The function is paused, or its flow control refuses the run (e.g. a
                `skip` singleton whose key is busy: `run_id` is then the active run's id).
        """
        return self._backend.invoke(function_id, data, dry_run)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run with its steps, attempts, logs, progress and counters.

        A large output is not inlined (`output_blob`); `output()` reads it.
        """
        return self._backend.get_run(run_id)

    def list_runs(
        self,
        *,
        function_id: str | None = None,
        status: RunStatus | None = None,
        event_id: str | None = None,
        trigger_kind: TriggerKind | None = None,
        dry_run: bool | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        q: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first; page with `before=<last run id>`.

        `created_after <= created_at < created_before`; `q` is text inside the triggering
        event's data (case-insensitive; unindexed, so combine it with other criteria);
        `dry_run`: only dry runs (True) or only real ones (False).
        """
        return self._backend.list_runs(
            {
                "function_id": function_id,
                "status": status,
                "event_id": event_id,
                "trigger_kind": trigger_kind,
                "dry_run": dry_run,
                "created_after": created_after,
                "created_before": created_before,
                "q": q,
                "limit": limit,
                "before": before,
            }
        )

    def cancel_runs(self, *, reason: str | None = None, **criteria: Unpack[RunCriteria]) -> int:
        """Cancel every active run matching all the criteria given; returns how many.

        Criteria (`RunCriteria`): function_id, status, event_id, trigger_kind, dry_run,
        error_name (the error's class name), created_after, created_before, q. At least one
        is required; more than 10,000 matching runs is refused whole (`InvalidInput`).
        `reason` (at most 500 characters) is stored with each run cancelled.
        """
        return self._backend.cancel_runs(_selection(criteria), reason)

    def replay_runs(self, *, reason: str | None = None, **criteria: Unpack[RunCriteria]) -> int:
        """Replay every run matching all the criteria given (all or none); returns how many.

        Criteria as for `cancel_runs`. More than 10,000 runs is refused (`InvalidInput`), and
        so is a paused function's run (`Conflict`). `reason` is stored with each new run.
        """
        return self._backend.replay_runs(_selection(criteria), reason)

    def preview_runs(
        self, action: Literal["cancel", "replay"], **criteria: Unpack[RunCriteria]
    ) -> dict[str, Any]:
        """What `cancel_runs` or `replay_runs` would touch, touching nothing.

        Returns `{"count": n, "sample": [the newest runs, at most 10]}`.
        """
        return self._backend.preview_runs(action, _selection(criteria))

    def runs_for_event(self, event_id: str) -> list[dict[str, Any]]:
        """The runs an event started (by the id `send` returned or the sender's id)."""
        return self._backend.runs_for_event(event_id)

    def wait_for_run(self, run_id: str, timeout: float = 60.0, poll: float = 0.1) -> dict[str, Any]:
        """Block until the run is COMPLETED, FAILED or CANCELLED; returns it.

        Raises:
            TimeoutError: The run did not end within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self._backend.get_run(run_id)
            if run["status"] in END_STATUSES:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout:g}s")
            time.sleep(poll)

    def cancel(self, run_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """Cancel a run; returns it (a no-op on a run that already ended).

        The run records who asked (over HTTP "api", locally "client") and `reason`, if given
        (at most 500 characters): its `cancellation`.
        """
        return self._backend.cancel(run_id, reason)

    def replay(self, run_id: str, *, reason: str | None = None) -> str:
        """Start a new run with the same trigger, linked to the original; returns its id.

        `reason` is stored with the new run (its `trigger.reason`).

        Raises:
            Conflict: The function is paused, or its flow control refuses the run (e.g. a
                `skip` singleton whose key is busy: `run_id` is then the active run's id).
        """
        return self._backend.replay(run_id, reason)

    def rerun(
        self,
        run_id: str,
        *,
        from_step: str | None = None,
        data: dict[str, Any] | None = None,
        dry_run: bool | None = None,
        reason: str | None = None,
    ) -> str:
        """Start a new run linked to `run_id` from one of its steps; returns its id.

        The finished steps before `from_step` (None: none) keep their stored results and
        are not executed again; the rest execute with `data` as the event data if given
        (else the original event's). `dry_run` None: as the original run. `reason` is
        stored with the new run.

        Raises:
            NotFound: No such run, or its function is gone.
            Conflict: The function is paused, or its flow control refuses the run.
            InvalidInput: The run has no step `from_step` (its steps are named), or `data`
                for a run of several events.
        """
        request = {"from_step": from_step, "data": data, "dry_run": dry_run, "reason": reason}
        return self._backend.rerun(run_id, {k: v for k, v in request.items() if v is not None})

    def functions(self) -> list[dict[str, Any]]:
        """The registered functions with their triggers."""
        return self._backend.functions()

    def pause(self, function_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """Pause a function: its events and cron ticks start no runs; returns it.

        The function records the pause's time, who asked and `reason` (its `pause`).
        """
        return self._backend.set_paused(function_id, True, reason)

    def resume(self, function_id: str) -> dict[str, Any]:
        """Resume a paused function; returns it."""
        return self._backend.set_paused(function_id, False, None)

    def get_event(self, event_id: str) -> dict[str, Any]:
        """One stored event."""
        return self._backend.get_event(event_id)

    def list_events(
        self,
        *,
        name: str | None = None,
        name_prefix: str | None = None,
        received_after: datetime | None = None,
        received_before: datetime | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> dict[str, Any]:
        """Events, newest first: `{"data": [...], "next_cursor": ...}`.

        `name` matches exactly, `name_prefix` the start of the name. Pass `next_cursor` as
        `before` for the next page (None on the last page).
        """
        return self._backend.list_events(
            {
                "name": name,
                "name_prefix": name_prefix,
                "received_after": received_after,
                "received_before": received_before,
                "limit": limit,
                "before": before,
            }
        )

    def workers(self) -> list[dict[str, Any]]:
        """The registered workers: capacity, runs in flight, last heartbeat, liveness."""
        return self._backend.workers()

    def list_apps(self) -> list[dict[str, Any]]:
        """The apps, by id: Python apps and synced SDK apps, each with its function ids."""
        return self._backend.apps()

    def sync_app(self, url: str) -> dict[str, Any]:
        """Sync (or re-sync) the Inngest SDK app served at `url`; returns the app as stored.

        The app registers its functions now: runs of functions it no longer has are cancelled.
        On a local client the app registers with the server it is configured for, which must
        serve this database.

        Raises:
            InvalidInput: `url` is not an http(s) URL with a host.
            ClientError: The app could not be reached, refused the sync, or registered with
                another server or under another URL (`status` 502); the message says which.
        """
        return self._backend.sync_app(url)

    def close(self) -> None:
        """Release the connection or database."""
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
