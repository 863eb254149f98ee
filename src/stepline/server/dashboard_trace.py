"""The run page's trace: a waterfall of every step attempt on a real time axis, with a panel each.

One row per step, in the order the steps started; a parallel group's branches follow it, each
branch and its steps indented. A row's spans are its failed attempts, the backoff after each
(until the next attempt, or the retry time), then the attempt that counted (or the sleep, the
wait, the invoke); the first row is the run itself, queued then running. Each span opens a panel
(output, error, log lines and actions) beside the trace; the axis runs from the run's creation
to its end, or to now while it is active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from stepline._durations import format_duration, period_text
from stepline.engine.operations import RunDetail
from stepline.sdk.step import hash_step_id
from stepline.server.dashboard_json import BlobView, JsonBlock, output_block
from stepline.server.dashboard_models import (
    ErrorView,
    LogView,
    Moment,
    error_view,
    log_view,
    moment,
    output_href,
    run_href,
)
from stepline.store.base import RECLAIM_LEVEL, AttemptRecord, LogRecord, RunRecord, StepRecord

MIN_WIDTH_PCT = 0.4  # a span shorter than this is drawn this wide, so it can be seen and clicked
TICK_STEPS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
)
MAX_TICKS = 6
_UNPLACED = 10**9  # the position of a step that has no stored row yet
Fact = tuple[str, str | Moment]  # a Moment shows in the viewer's time zone


@dataclass(frozen=True, kw_only=True, slots=True)
class Span:
    """A bar on a row, placed by `style`, opening panel `panel` when selected.

    `kind` names what it was: attempt-ok, attempt-failed, backoff, sleep, wait, queued, running,
    in-flight, or takeover (the quiet before another worker took over a lost run).
    """

    kind: str
    style: str
    title: str
    panel: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One line of the waterfall: its label, indent, spans and the panel its label opens.

    In a branch, `label` is the step's own id and `full_label` the scoped one.
    """

    label: str
    full_label: str
    indent: int
    status_class: str
    duration: str
    panel: str
    spans: list[Span]
    since: str | None = None  # ISO start of a step executing now: the page counts up from it


@dataclass(frozen=True, kw_only=True, slots=True)
class Panel:
    """What a span shows when selected: facts, output, error, the lines it logged, actions."""

    id: str
    title: str
    facts: list[Fact]
    output: JsonBlock | BlobView | None = None
    error: ErrorView | None = None
    logs: list[LogView]
    rerun_from: str | None = None  # a step id: the panel offers "Rerun from here"
    links: list[tuple[str, str]]  # (text, href): invoked or branch runs


@dataclass(frozen=True, kw_only=True, slots=True)
class Trace:
    """The waterfall: rows, axis ticks `(left %, label)` and the panels of every span."""

    rows: list[Row]
    ticks: list[tuple[float, str]]
    panels: list[Panel]
    span_text: str


class _Axis:
    """Percent positions on the axis from `origin` to `end`."""

    def __init__(self, origin: datetime, end: datetime) -> None:
        self.origin = origin
        self.end = end
        self.seconds = max((end - origin).total_seconds(), 1e-3)

    def style(self, start: datetime, stop: datetime | None) -> str:
        stop = min(stop or self.end, self.end)
        left = min(max((start - self.origin).total_seconds() / self.seconds, 0.0), 1.0) * 100
        width = max((stop - start).total_seconds() / self.seconds * 100, MIN_WIDTH_PCT)
        width = min(width, max(100 - left, MIN_WIDTH_PCT))
        left = min(left, 100 - width)
        return f"left: {left:.2f}%; width: {width:.2f}%"

    def ticks(self) -> list[tuple[float, str]]:
        step = next((s for s in TICK_STEPS if self.seconds / s <= MAX_TICKS), TICK_STEPS[-1])
        count = int(self.seconds // step)
        return [(i * step / self.seconds * 100, _offset(i * step)) for i in range(count + 1)]


def build_trace(detail: RunDetail, now: datetime) -> Trace:
    """The trace of a run as stored; an active run's axis ends at `now`."""
    run = detail.run
    axis = _Axis(run.created_at, run.ended_at or now)
    failures: dict[str, list[AttemptRecord]] = {}
    for attempt in sorted(detail.attempts, key=lambda a: a.attempt):
        failures.setdefault(attempt.step_hash, []).append(attempt)
    children = {child.parent_step: child for child in detail.children if child.parent_step}
    takeovers = _takeovers(detail, axis)
    rows: list[Row] = [_run_row(run, axis, failures.get("", []), [s for s, _ in takeovers])]
    panels: list[Panel] = [_run_panel(run, failures.get("", []), detail.logs)]
    panels += [panel for _, panel in takeovers]
    panels += _attempt_panels("run", failures.get("", []), detail.logs, None)
    in_flight = detail.in_flight
    pending = _pending(detail.steps, failures, in_flight)
    for step, indent in _ordered([*detail.steps, *pending]):
        tried = failures.get(step.hash, [])
        if step in pending:
            since = in_flight[1] if in_flight and in_flight[0] == step.id else None
            rows.append(_pending_row(step, indent, tried, axis, since))
        else:
            rows.append(_step_row(step, indent, tried, axis))
            panels.append(_step_panel(step, tried, detail.logs, children.get(step.hash)))
        panels += _attempt_panels(_panel_id(step), tried, detail.logs, step.id)
    return Trace(
        rows=rows,
        ticks=axis.ticks(),
        panels=panels,
        span_text=format_duration(axis.seconds),
    )


def _pending(
    steps: Sequence[StepRecord],
    failures: dict[str, list[AttemptRecord]],
    in_flight: tuple[str, datetime] | None,
) -> list[StepRecord]:
    """Stand-ins for the steps with no row yet: to be tried again, or executing now."""
    stored = {step.hash for step in steps}
    found: dict[str, tuple[str, datetime]] = {
        step_hash: (tried[0].step_id or step_hash, tried[0].started_at)
        for step_hash, tried in failures.items()
        if step_hash and step_hash not in stored
    }
    if in_flight is not None and hash_step_id(in_flight[0]) not in stored:
        found.setdefault(hash_step_id(in_flight[0]), in_flight)
    return [
        StepRecord(
            run_id="",
            hash=step_hash,
            id=step_id,
            kind="run",
            status="waiting",
            position=_UNPLACED,
            started_at=started,
        )
        for step_hash, (step_id, started) in found.items()
    ]


def _pending_row(
    step: StepRecord,
    indent: int,
    failures: list[AttemptRecord],
    axis: _Axis,
    since: datetime | None,
) -> Row:
    """A step with no row yet: its failed attempts, then the backoff or the attempt in flight."""
    panel = f"{_panel_id(step)}-a{failures[-1].attempt + 1}" if failures else "panel-run"
    spans = _failure_spans(_panel_id(step), failures, axis, since)
    if since is not None:
        spans.append(
            Span(
                kind="in-flight",
                style=axis.style(since, None),
                title=f"{step.id}: executing for {_span_text(since, axis.end)}",
                panel=panel,
            )
        )
    return Row(
        label=_label(step.id, indent),
        full_label=step.id,
        indent=indent,
        status_class="step-status step-waiting",
        duration=_span_text(since, axis.end) if since is not None else "retrying",
        panel=panel,
        spans=spans,
        since=since.isoformat() if since is not None else None,
    )


def _ordered(steps: Sequence[StepRecord]) -> list[tuple[StepRecord, int]]:
    """Steps in the order they started, each parallel group followed by its branches' rows."""
    groups = [step.id for step in steps if step.kind == "parallel"]
    inside: dict[str, list[StepRecord]] = {group: [] for group in groups}
    top: list[StepRecord] = []
    for step in steps:
        group = next((g for g in groups if step.id.startswith(f"{g}[")), None)
        (inside[group] if group else top).append(step)
    ordered: list[tuple[StepRecord, int]] = []
    for step in sorted(top, key=lambda s: (s.started_at, s.position)):
        ordered.append((step, 0))
        if step.kind == "parallel":
            members = sorted(
                inside[step.id], key=lambda s: (_branch(s.id), s.kind != "branch", s.started_at)
            )
            ordered += [(member, 1 if member.kind == "branch" else 2) for member in members]
    return ordered


def _label(step_id: str, indent: int) -> str:
    """A row's label: a branch's step (`group[i]/step`) by its own id, under its branch."""
    return step_id.split("/", 1)[1] if indent == 2 else step_id


def _branch(step_id: str) -> str:
    """`group[i]` of a branch's step id (`group[i]/step`) or of its marker (`group[i]`)."""
    return step_id.split("/", 1)[0]


def _takeovers(detail: RunDetail, axis: _Axis) -> list[tuple[Span, Panel]]:
    """Each time the run's worker stopped renewing its lease and another took the run over.

    The span covers the quiet before the takeover: from the last thing the run recorded.
    """
    found = []
    for i, log in enumerate(log for log in detail.logs if log.level == RECLAIM_LEVEL):
        quiet = _last_sign_of_life(detail, log.ts)
        gap = _span_text(quiet, log.ts)
        panel = f"panel-takeover-{i + 1}"
        span = Span(
            kind="takeover",
            style=axis.style(quiet, log.ts),
            title=f"worker lost: nothing recorded for {gap}, then another worker took over",
            panel=panel,
        )
        facts: list[Fact] = [
            ("Last recorded", moment(quiet)),
            ("Taken over", moment(log.ts)),
            ("Gap", gap),
        ]
        found.append(
            (
                span,
                Panel(id=panel, title="Worker lost", facts=facts, logs=[log_view(log)], links=[]),
            )
        )
    return found


def _last_sign_of_life(detail: RunDetail, before: datetime) -> datetime:
    """The latest moment before `before` at which the run recorded something."""
    moments = [detail.run.created_at, detail.run.started_at]
    moments += [moment for step in detail.steps for moment in (step.started_at, step.ended_at)]
    moments += [attempt.ended_at for attempt in detail.attempts]
    moments += [log.ts for log in detail.logs]
    return max((m for m in moments if m is not None and m < before), default=detail.run.created_at)


def _run_row(
    run: RunRecord, axis: _Axis, failures: list[AttemptRecord], takeovers: list[Span]
) -> Row:
    spans: list[Span] = []
    if run.started_at is None or run.started_at > run.created_at:
        spans.append(
            Span(
                kind="queued",
                style=axis.style(run.created_at, run.started_at),
                title=f"queued {_span_text(run.created_at, run.started_at or axis.end)}",
                panel="panel-run",
            )
        )
    if run.started_at is not None:
        spans.append(
            Span(
                kind=f"running run-{run.status.lower()}",
                style=axis.style(run.started_at, run.ended_at),
                title=f"{run.status.lower()} {_span_text(run.started_at, axis.end)}",
                panel="panel-run",
            )
        )
    spans += _failure_spans("run", failures, axis, None)
    spans += takeovers
    return Row(
        label="run",
        full_label="the run",
        indent=0,
        status_class=f"status status-{run.status.lower()}",
        duration=_span_text(run.started_at, run.ended_at or axis.end) if run.started_at else "",
        panel="panel-run",
        spans=spans,
    )


def _step_row(step: StepRecord, indent: int, failures: list[AttemptRecord], axis: _Axis) -> Row:
    panel = _panel_id(step)
    final_start = step.started_at
    end = min(_final_end(step) or axis.end, axis.end)
    spans = _failure_spans(panel, failures, axis, final_start)
    spans.append(
        Span(
            kind=_final_kind(step),
            style=axis.style(step.started_at, _final_end(step)),
            title=f"{step.id}: {_final_words(step)} {_span_text(step.started_at, end)}",
            panel=panel,
        )
    )
    return Row(
        label=_label(step.id, indent),
        full_label=step.id,
        indent=indent,
        status_class=f"step-status step-{step.status}",
        duration=_span_text(failures[0].started_at if failures else step.started_at, step.ended_at)
        if step.ended_at
        else "",
        panel=panel,
        spans=spans,
    )


def _failure_spans(
    panel: str, failures: list[AttemptRecord], axis: _Axis, final_start: datetime | None
) -> list[Span]:
    """Each failed attempt and the backoff after it, up to the next attempt's start."""
    spans: list[Span] = []
    for i, attempt in enumerate(failures):
        attempt_panel = f"{panel}-a{attempt.attempt + 1}"
        spans.append(
            Span(
                kind="attempt-failed",
                style=axis.style(attempt.started_at, attempt.ended_at),
                title=f"attempt {attempt.attempt + 1} failed after "
                f"{_span_text(attempt.started_at, attempt.ended_at)}",
                panel=attempt_panel,
            )
        )
        following = failures[i + 1].started_at if i + 1 < len(failures) else final_start
        resumed = following or attempt.retry_at
        if resumed is not None and resumed > attempt.ended_at:
            spans.append(
                Span(
                    kind="backoff",
                    style=axis.style(attempt.ended_at, resumed),
                    title=f"backoff {_span_text(attempt.ended_at, resumed)} before attempt "
                    f"{attempt.attempt + 2}",
                    panel=attempt_panel,
                )
            )
    return spans


def _final_kind(step: StepRecord) -> str:
    if step.kind == "sleep":
        return "sleep"
    if step.status in ("waiting", "sleeping") or step.kind in ("wait", "invoke"):
        return "wait" if step.status != "failed" else "attempt-failed"
    return "attempt-failed" if step.status == "failed" else "attempt-ok"


def _final_end(step: StepRecord) -> datetime | None:
    if step.ended_at is not None:
        return step.ended_at
    return step.wake_at if step.status == "sleeping" else None


def _final_words(step: StepRecord) -> str:
    if step.status == "sleeping":
        return "sleeping"
    if step.status == "waiting":
        return "waiting"
    return step.status


def _step_panel(
    step: StepRecord,
    failures: list[AttemptRecord],
    logs: Sequence[LogRecord],
    child: RunRecord | None,
) -> Panel:
    attempts = len(failures) + (1 if step.status in ("completed", "failed") else 0)
    facts: list[Fact] = [
        ("Kind", step.kind),
        ("Status", step.status),
        ("Started", moment(step.started_at)),
    ]
    if step.ended_at is not None:
        facts += [
            ("Ended", moment(step.ended_at)),
            ("Took", _span_text(step.started_at, step.ended_at)),
        ]
    if step.wake_at is not None and step.status == "sleeping":
        facts.append(("Wakes", moment(step.wake_at)))
    facts.append(("Attempts", str(max(attempts, step.attempts))))
    links = [(_child_text(child), run_href(child.id))] if child else []
    return Panel(
        id=_panel_id(step),
        title=f"Step {step.id}",
        facts=facts,
        output=output_block(step.output, output_href(step.run_id, step.hash)),
        error=error_view(step.error) if step.error is not None else None,
        logs=[
            log_view(log) for log in logs if log.step_id == step.id and log.ts >= step.started_at
        ],
        rerun_from=None if step.kind == "branch" else step.id,
        links=links,
    )


def _child_text(child: RunRecord) -> str:
    kind = "branch" if child.trigger_kind == "parallel" else "invoked"
    return f"{kind} run {child.id} ({child.status})"


def _attempt_panels(
    panel: str, failures: list[AttemptRecord], logs: Sequence[LogRecord], step_id: str | None
) -> list[Panel]:
    return [
        Panel(
            id=f"{panel}-a{attempt.attempt + 1}",
            title=f"{_where(step_id)}: attempt {attempt.attempt + 1} failed",
            facts=[
                ("Started", moment(attempt.started_at)),
                ("Failed", moment(attempt.ended_at)),
                ("Took", _span_text(attempt.started_at, attempt.ended_at)),
                ("Retry at", moment(attempt.retry_at) if attempt.retry_at else "not retried"),
            ],
            error=error_view(attempt.error),
            logs=[
                log_view(log)
                for log in logs
                if log.step_id == step_id and attempt.started_at <= log.ts <= attempt.ended_at
            ],
            links=[],
        )
        for attempt in failures
    ]


def _where(step_id: str | None) -> str:
    return f"Step {step_id}" if step_id else "Code outside steps"


def _run_panel(run: RunRecord, failures: list[AttemptRecord], logs: Sequence[LogRecord]) -> Panel:
    facts: list[Fact] = [
        ("Status", run.status + (f" ({run.detail})" if run.detail else "")),
        ("Created", moment(run.created_at)),
    ]
    if run.started_at is not None:
        facts += [
            ("Queued for", _span_text(run.created_at, run.started_at)),
            ("Started", moment(run.started_at)),
        ]
    if run.ended_at is not None:
        facts.append(("Ended", moment(run.ended_at)))
    if failures:
        facts.append(("Failed attempts outside steps", str(len(failures))))
    return Panel(
        id="panel-run",
        title="The run",
        facts=facts,
        output=output_block(run.output, output_href(run.id)),
        error=error_view(run.error) if run.error is not None else None,
        logs=[log_view(log) for log in logs if log.step_id is None],
        links=[],
    )


def _panel_id(step: StepRecord) -> str:
    return f"panel-{step.hash[:12]}"


def _span_text(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return format_duration(max(0.0, (end - start).total_seconds()))


def _offset(seconds: float) -> str:
    """An axis label: 0, +250ms, +2s, +15m, +1h."""
    return "0" if seconds == 0 else f"+{period_text(seconds)}"
