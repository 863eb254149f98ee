"""Records as JSON-ready dicts: the one shape the REST API, the clients and the CLI show."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stepline._retention import DEFAULT_RETENTION, Retention, retention_view
from stepline.engine.operations import RunDetail
from stepline.engine.option_views import option_summaries, options_view
from stepline.engine.outputs import blob_link
from stepline.engine.waiting import DETAILS
from stepline.sdk.triggers import CronTrigger, trigger_from_config
from stepline.store.base import (
    AppRecord,
    AttemptRecord,
    CronState,
    EventRecord,
    FunctionRecord,
    FunctionStats,
    LogRecord,
    RunRecord,
    StepRecord,
    WorkerRecord,
)
from stepline.store.blobs import blob_ref


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def output_fields(run_id: str, step_hash: str | None, output: str | None) -> dict[str, Any]:
    """`output` and `output_blob` of a run (`step_hash` None) or a step.

    An output kept as a blob (see `engine.outputs`) is not inlined: `output` is null and
    `output_blob` has its size and download URL. An inline one is `output`, with no blob.
    """
    ref = blob_ref(output)
    if ref is None:
        return {"output": _json(output), "output_blob": None}
    return {"output": None, "output_blob": blob_link(run_id, step_hash, ref)}


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 6)


def progress_view(run: RunRecord, now: datetime) -> dict[str, Any] | None:
    """Progress with percent and an ETA: the pace up to the last report, counted down since.

    Between two reports the ETA falls as time passes (it never grows while the run works
    towards the next report); it stays at 0 once it has passed.
    """
    if run.progress_done is None:
        return None
    done, total = run.progress_done, run.progress_total
    reported = run.progress_at or now
    percent = eta = None
    if total:
        percent = round(min(100.0, 100.0 * done / total), 1)
        elapsed = _seconds(run.started_at, reported)
        if elapsed is not None and 0 < done < total and not run.ended:
            left = elapsed * (total - done) / done - max(0.0, (now - reported).total_seconds())
            eta = round(max(0.0, left), 1)
    return {
        "done": done,
        "total": total,
        "message": run.progress_message,
        "percent": percent,
        "eta_seconds": eta,
        "reported_at": _iso(run.progress_at),
    }


def cancellation_view(run: RunRecord) -> dict[str, Any] | None:
    """Who asked to cancel the run, when, and the reason given; None unless cancelled by request."""
    if run.status != "CANCELLED" or run.cancel_requested_by is None:
        return None
    return {
        "at": _iso(run.ended_at),
        "requested_by": run.cancel_requested_by,
        "reason": run.cancel_reason,
    }


def run_view(
    run: RunRecord, now: datetime | None = None, waiting_for: str | None = None
) -> dict[str, Any]:
    """A run's summary; `waiting_for` says why an active run is not executing.

    Without it, a parked run's detail code is put in words.
    """
    now = now or datetime.now(UTC)
    if waiting_for is None and not run.ended and run.detail in DETAILS:
        waiting_for = DETAILS[run.detail]
    return {
        "id": run.id,
        "function_id": run.function_id,
        "status": run.status,
        "detail": run.detail,
        "waiting_for": waiting_for,
        "reason": run.reason,
        "cancelled_by": run.cancelled_by,
        "cancellation": cancellation_view(run),
        "parent_run_id": run.parent_run_id,
        "start_by": _iso(run.start_by),
        "dry_run": run.dry_run,
        "trigger": {
            "kind": run.trigger_kind,
            "by": run.trigger_by,
            "reason": run.trigger_reason,
            "event_id": run.event_id,
            "event_ids": list(run.event_ids),
        },
        "replay_of": run.replay_of,
        "attempt": run.attempt,
        **output_fields(run.id, None, run.output),
        "error": _json(run.error),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "duration_seconds": _seconds(run.started_at, run.ended_at),
        "timeout_at": _iso(run.timeout_at),
        "progress": progress_view(run, now),
        "counters": json.loads(run.counters),
    }


def step_view(step: StepRecord) -> dict[str, Any]:
    """A step with its outcome and timing."""
    return {
        "id": step.id,
        "hash": step.hash,
        "kind": step.kind,
        "status": step.status,
        "position": step.position,
        "attempts": step.attempts,
        **output_fields(step.run_id, step.hash, step.output),
        "error": _json(step.error),
        "started_at": _iso(step.started_at),
        "ended_at": _iso(step.ended_at),
        "duration_seconds": _seconds(step.started_at, step.ended_at),
        "wake_at": _iso(step.wake_at),
    }


def attempt_view(attempt: AttemptRecord) -> dict[str, Any]:
    """A failed attempt of a step ("step_id" set) or of the function ("step_id" null)."""
    return {
        "step_id": attempt.step_id,
        "step_hash": attempt.step_hash or None,
        "attempt": attempt.attempt,
        "error": json.loads(attempt.error),
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "retry_at": _iso(attempt.retry_at),
    }


def log_view(log: LogRecord) -> dict[str, Any]:
    """A log line."""
    return {"ts": _iso(log.ts), "level": log.level, "message": log.message, "step_id": log.step_id}


def child_view(run: RunRecord) -> dict[str, Any]:
    """A run started by another run's step: which step (its hash), and how it stands."""
    return {
        "id": run.id,
        "function_id": run.function_id,
        "kind": run.trigger_kind,
        "parent_step": run.parent_step,
        "status": run.status,
    }


def run_detail_view(detail: RunDetail, now: datetime | None = None) -> dict[str, Any]:
    """A run with its steps, failed attempts and logs, and the step it is executing now."""
    in_flight = None
    if detail.in_flight is not None:
        step_id, since = detail.in_flight
        in_flight = {"step_id": step_id, "since": _iso(since)}
    return {
        **run_view(detail.run, now, detail.waiting_for),
        "in_flight": in_flight,
        "children": [child_view(child) for child in detail.children],
        "steps": [step_view(s) for s in detail.steps],
        "attempts": [attempt_view(a) for a in detail.attempts],
        "logs": [log_view(log) for log in detail.logs],
    }


def event_view(event: EventRecord) -> dict[str, Any]:
    """An event as stored."""
    return {
        "internal_id": event.internal_id,
        "id": event.id,
        "name": event.name,
        "data": json.loads(event.data),
        "user": json.loads(event.user),
        "ts": event.ts,
        "received_at": _iso(event.received_at),
        "source": event.source,
    }


def trigger_view(
    config: dict[str, Any], now: datetime, cron: Mapping[str, CronState] | None = None
) -> dict[str, Any]:
    """A trigger as registered, with a cron trigger's next tick, last tick and missed ticks.

    Times are in the schedule's zone; `cron` holds the function's states by schedule.
    """
    trigger = trigger_from_config(config)
    if not isinstance(trigger, CronTrigger):
        return dict(config)
    zone = trigger.zone()
    state = (cron or {}).get(trigger.schedule)
    return {
        **config,
        "next_fire_at": trigger.next_after(now).astimezone(zone).isoformat(),
        "last_fire_at": None if state is None else state.last_tick.astimezone(zone).isoformat(),
        "missed_fires": 0 if state is None else state.missed_total,
    }


def pause_view(fn: FunctionRecord) -> dict[str, Any] | None:
    """Since when a paused function is paused, who paused it and why; None when it is not."""
    if not fn.paused:
        return None
    return {"at": _iso(fn.paused_at), "by": fn.paused_by, "reason": fn.pause_reason}


def success_rate(ended: Mapping[str, int]) -> float | None:
    """COMPLETED runs over all ended runs (rounded to 4 places); None when none ended."""
    total = sum(ended.values())
    return round(ended.get("COMPLETED", 0) / total, 4) if total else None


def function_view(
    fn: FunctionRecord,
    stats: FunctionStats | None = None,
    now: datetime | None = None,
    cron: Mapping[str, CronState] | None = None,
    *,
    retention: Retention = DEFAULT_RETENTION,
) -> dict[str, Any]:
    """A function: triggers (with next cron ticks), options, newest run, the last 24 hours.

    `stats` is the function's entry from `Store.function_stats` over the last 24 hours (None:
    it never ran); `cron` its schedules' states from `Store.cron_states`. "options" holds the
    flow-control options set, as stored; "option_summaries" says each in words. An SDK
    app's function (app_kind "sdk") has the `url` its SDK serves it at; a Python one has none.
    "retention" is how long its ended runs are kept: its own, else the default `retention`.
    """
    now = now or datetime.now(UTC)
    config = json.loads(fn.config)
    last = stats.last_run if stats is not None else None
    ended = dict(stats.ended) if stats is not None else {}
    return {
        "id": fn.id,
        "app_id": fn.app_id,
        "app_kind": "sdk" if config.get("url") else "python",
        "url": config.get("url"),
        "name": fn.name,
        "paused": fn.paused,
        "pause": pause_view(fn),
        "triggers": [trigger_view(t, now, cron) for t in config["triggers"]],
        "retries": config["retries"],
        "timeout_seconds": config.get("timeout_seconds"),
        "options": options_view(config),
        "option_summaries": option_summaries(config),
        "retention": retention_view(config, retention),
        "last_run": (
            None
            if last is None
            else {"id": last.id, "status": last.status, "created_at": _iso(last.created_at)}
        ),
        "ended_24h": ended,
        "success_rate_24h": success_rate(ended),
    }


def app_view(app: AppRecord, functions: Sequence[str]) -> dict[str, Any]:
    """An app: its kind, where and with which SDK it is served, its last sync, its functions.

    `functions` are the ids of its functions.
    """
    return {
        "id": app.id,
        "kind": app.kind,
        "url": app.url,
        "sdk": app.sdk,
        "framework": app.framework,
        "app_version": app.app_version,
        "synced_at": _iso(app.synced_at),
        "functions": list(functions),
    }


def worker_view(worker: WorkerRecord, now: datetime | None = None) -> dict[str, Any]:
    """A worker; `alive` means its claim loop reported within three heartbeat periods.

    `healthy` means alive with no slot held by an abandoned step.
    """
    now = now or datetime.now(UTC)
    silent = (now - worker.heartbeat_at).total_seconds()
    alive = worker.alive(now)
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "slots": worker.slots,
        "inflight": worker.inflight,
        "functions": list(worker.functions),
        "started_at": _iso(worker.started_at),
        "heartbeat_at": _iso(worker.heartbeat_at),
        "seconds_since_heartbeat": round(silent, 3),
        "heartbeat_seconds": worker.heartbeat_seconds,
        "alive": alive,
        "stopping": worker.stopping,
        "abandoned": worker.abandoned,
        "healthy": alive and worker.abandoned == 0,
    }


def abandoned_text(count: int) -> str:
    """How many slots abandoned steps hold, in words ("2 slots held by abandoned steps")."""
    if count == 1:
        return "1 slot held by an abandoned step"
    return f"{count} slots held by abandoned steps"
