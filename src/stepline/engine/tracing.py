"""OpenTelemetry traces of runs and step attempts (the optional extra `stepline[otel]`).

A run lives across many replays, processes and machines, so it has no open span: its trace
context is fixed by the run itself. A `traceparent` given with its triggering event (at intake,
by `step.send_event` or `step.invoke`, kept in the event's `data._inngest.traceparent`) sets
the trace and the run span's parent; otherwise the trace id derives from the run id. The run
span's id always derives from the run id. Each step attempt is a span, child of the run span,
made current while the user's code runs (their own spans nest under it); the run span itself
is emitted once, when a replay ends the run, with the run's start and end as its times.

Everything here is a no-op (one module-level check) unless the OpenTelemetry SDK is installed
and a tracer provider is configured: by the application (`opentelemetry.trace.
set_tracer_provider`, `opentelemetry-instrument`), by `configure`, or, when neither did before
the first run executes, from the standard `OTEL_*` variables (`OTEL_TRACES_EXPORTER` or
`OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT` set).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stepline.engine import _otel_setup
from stepline.engine.ending import Ending
from stepline.store.base import EventRecord, RunRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer, TracerProvider
    from opentelemetry.trace import Span, SpanContext

TRACEPARENT_KEY = "traceparent"  # in an event's `data._inngest`
_META_KEY = "_inngest"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_lock = threading.Lock()
_resolved = False  # the hot path's check: until then, `_resolve` runs once
_tracer: Tracer | None = None


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a valid W3C `traceparent`; None otherwise (ignored)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id, flags = (int(part, 16) for part in match.groups())
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, flags


def format_traceparent(trace_id: int, span_id: int, flags: int = 1) -> str:
    """The W3C `traceparent` header value."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def with_traceparent(record: EventRecord, traceparent: str | None) -> EventRecord:
    """The event carrying `traceparent` in `data._inngest.traceparent` (unchanged if invalid)."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return record
    data = json.loads(record.data)
    meta = data.get(_META_KEY)
    value = format_traceparent(*parsed)
    data[_META_KEY] = {**(meta if isinstance(meta, dict) else {}), TRACEPARENT_KEY: value}
    return replace(record, data=json.dumps(data, separators=(",", ":")))


def with_traceparents(records: list[EventRecord], traceparent: str | None) -> list[EventRecord]:
    """`with_traceparent` for each event."""
    if parse_traceparent(traceparent) is None:
        return records
    return [with_traceparent(record, traceparent) for record in records]


def _derived(label: str, run_id: str, bits: int) -> int:
    digest = hashlib.sha256(f"stepline:{label}:{run_id}".encode()).digest()
    return int.from_bytes(digest[: bits // 8], "big") or 1


@dataclass(frozen=True, slots=True)
class RunTrace:
    """A run's place in its trace: its trace id, its span id and the span it continues."""

    function_id: str
    run_id: str
    attempt: int
    trace_id: int
    span_id: int
    parent_span_id: int | None
    flags: int

    @classmethod
    def of(cls, run: RunRecord, events: Sequence[EventRecord]) -> RunTrace:
        """The run's trace context, from its first event's traceparent or its id."""
        given = parse_traceparent(_event_traceparent(events[0])) if events else None
        if given is None:
            trace_id, parent, flags = _derived("trace", run.id, 128), None, 1
        else:
            trace_id, parent, flags = given
        span_id = _derived("run", run.id, 64)
        return cls(run.function_id, run.id, run.attempt, trace_id, span_id, parent, flags)

    @property
    def traceparent(self) -> str:
        """The run span's `traceparent`, for what the run sends or invokes."""
        return format_traceparent(self.trace_id, self.span_id, self.flags)


def _event_traceparent(event: EventRecord) -> str | None:
    if TRACEPARENT_KEY not in event.data:  # cheap: most events carry none
        return None
    meta = json.loads(event.data).get(_META_KEY)
    value = meta.get(TRACEPARENT_KEY) if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def run_trace(run: RunRecord, events: Sequence[EventRecord]) -> RunTrace | None:
    """The run's trace context when tracing is on; None (nothing to do) when off."""
    if not _resolved:
        _resolve()
    if _tracer is None:
        return None
    return RunTrace.of(run, events)


def preload() -> None:
    """Load the OpenTelemetry SDK now if installed (a worker's start), not in the first run.

    Which provider traces (if any) is still decided when the first run executes.
    """
    if not _resolved:
        _otel_setup.preload()


def configure(provider: TracerProvider | None) -> None:
    """Trace runs to `provider` (an SDK `TracerProvider`), or not at all (None)."""
    global _resolved, _tracer
    with _lock:
        _tracer = None if provider is None else _otel_setup.own_tracer(provider)
        _resolved = True


def _resolve() -> None:
    """Find the tracer provider once: the application's, or one set up from `OTEL_*`."""
    global _resolved, _tracer
    with _lock:
        if _resolved:
            return
        _tracer = _otel_setup.global_tracer()
        _resolved = True


def _remote(trace: RunTrace, span_id: int) -> SpanContext:
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(trace.trace_id, span_id, is_remote=True, trace_flags=TraceFlags(trace.flags))


def step_attempt(
    trace: RunTrace | None, step_id: str, attempt: int
) -> AbstractContextManager[Span | None]:
    """A span for one attempt of a step, current while it runs (a no-op with no trace)."""
    if trace is None or _tracer is None:
        return nullcontext()
    return _step_span(_tracer, trace, step_id, attempt)


@contextmanager
def _step_span(tracer: Tracer, trace: RunTrace, step_id: str, attempt: int) -> Iterator[Span]:
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context

    parent = set_span_in_context(NonRecordingSpan(_remote(trace, trace.span_id)))
    attributes: dict[str, str | int] = {
        "stepline.function": trace.function_id,
        "stepline.run_id": trace.run_id,
        "stepline.step_id": step_id,
        "stepline.attempt": attempt,
    }
    with tracer.start_as_current_span(
        f"step {step_id}",
        context=parent,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def step_outcome(span: Span | None, outcome: str, error: BaseException | None = None) -> None:
    """Record a step attempt's outcome (`ok`, `retry`, `error`) and its exception."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("stepline.outcome", outcome)
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


_REPORTED = {"completed": "ok", "retried": "retry", "failed": "error"}


def reported_attempt(
    trace: RunTrace | None,
    step_id: str,
    attempt: int,
    outcome: str,
    error: dict[str, Any] | None,
    started: datetime,
    ended: datetime,
) -> None:
    """The span of a step attempt an SDK app ran and reported (`completed`, `retried`, ...)."""
    if trace is None or _tracer is None:
        return
    from opentelemetry.trace import NonRecordingSpan, Status, StatusCode, set_span_in_context

    span = _tracer.start_span(
        f"step {step_id}",
        context=set_span_in_context(NonRecordingSpan(_remote(trace, trace.span_id))),
        attributes={
            "stepline.function": trace.function_id,
            "stepline.run_id": trace.run_id,
            "stepline.step_id": step_id,
            "stepline.attempt": attempt,
            "stepline.outcome": _REPORTED.get(outcome, outcome),
        },
        start_time=_nanos(started),
    )
    if error is not None:
        name, message = str(error.get("name", "Error")), str(error.get("message", ""))
        span.add_event("exception", {"exception.type": name, "exception.message": message})
        span.set_status(Status(StatusCode.ERROR, f"{name}: {message}"))
    span.end(end_time=_nanos(ended))


def headers(trace: RunTrace | None) -> dict[str, str]:
    """The `traceparent` header of a request to an SDK app (none if tracing is off)."""
    return {} if trace is None else {"traceparent": trace.traceparent}


def current_traceparent(trace: RunTrace | None) -> str | None:
    """What the run sends or invokes continues: the current step span, else the run span."""
    if trace is None:
        return None
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if context.is_valid and context.trace_id == trace.trace_id:
        return format_traceparent(context.trace_id, context.span_id, int(context.trace_flags))
    return trace.traceparent


def run_ended(trace: RunTrace | None, run: RunRecord, ending: Ending | None, now: datetime) -> None:
    """Emit the run span once the run ended (COMPLETED or FAILED), from its start to now."""
    if trace is None or _tracer is None or ending is None or ending.status is None:
        return
    from opentelemetry.trace import NonRecordingSpan, Status, StatusCode, set_span_in_context

    parent = None
    if trace.parent_span_id is not None:
        parent = set_span_in_context(NonRecordingSpan(_remote(trace, trace.parent_span_id)))
    began = run.started_at or run.created_at
    token = _otel_setup.CHOSEN_IDS.set((trace.trace_id, trace.span_id))
    try:
        span = _tracer.start_span(
            f"run {trace.function_id}",
            context=parent,
            attributes={
                "stepline.function": trace.function_id,
                "stepline.run_id": trace.run_id,
                "stepline.attempt": trace.attempt,
                "stepline.outcome": ending.status.lower(),
            },
            start_time=_nanos(began),
        )
    finally:
        _otel_setup.CHOSEN_IDS.reset(token)
    if ending.status == "FAILED":
        span.set_status(Status(StatusCode.ERROR, _error_text(ending.error)))
    span.end(end_time=_nanos(now))


def _error_text(error: str | None) -> str:
    try:
        described: Any = json.loads(error or "{}")
    except ValueError:
        return error or ""
    if not isinstance(described, dict):
        return str(described)
    return f"{described.get('name', 'Error')}: {described.get('message', '')}"


def _nanos(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)
