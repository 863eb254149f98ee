"""Dashboard view models: records turned into exactly what the templates print.

Templates hold no logic, so everything they show (text, links, CSS classes, bar geometry) is
decided here, from store records and the engine's clock. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from stepline._durations import format_duration
from stepline._retention import DEFAULT_RETENTION, Retention, retention_view
from stepline.engine.operations import RunDetail
from stepline.engine.option_views import option_lines
from stepline.engine.views import progress_view, success_rate
from stepline.sdk.triggers import CronTrigger
from stepline.server.dashboard_json import BlobView, JsonBlock, json_block, output_block
from stepline.store.base import (
    CronState,
    EventRecord,
    FunctionRecord,
    FunctionStats,
    LogRecord,
    RunRecord,
    RunSummary,
)

ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})
PREVIEW_CHARS = 120  # of an event's data shown in one line
TITLE_CHARS = 2000  # of an event's data shown on hover in a runs list
SUMMARY_CHARS = 4 * TITLE_CHARS  # of an event's stored data read for it (escapes are longer)
_BY_PARENT = frozenset({"invoke", "parallel"})  # runs started by another run's step
_BY_ORIGINAL = frozenset({"replay", "rerun"})  # runs started again from another run
_OWN_EVENT = frozenset({"event", *_BY_ORIGINAL})  # runs whose event name says what ran


@dataclass(frozen=True, kw_only=True, slots=True)
class Moment:
    """A point in time: ISO UTC for `<time datetime>`, and the text shown without JavaScript."""

    iso: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorView:
    """An error as stored: its type name, message and traceback text."""

    name: str
    message: str
    traceback: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Option:
    """A `<select>` option."""

    value: str
    label: str
    selected: bool


def options(values: Sequence[str], selected: str | None, any_label: str) -> list[Option]:
    """An "any" option (empty value) followed by `values`, with `selected` marked."""
    first = Option(value="", label=any_label, selected=selected is None)
    return [first, *(Option(value=v, label=v, selected=v == selected) for v in values)]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRow:
    """One line of a runs table.

    What started it: `event_name` (linked to `event_href`) for a run started by an event (or
    a replay or rerun of one); otherwise, and for replays and reruns, a `badge` ("cron",
    "manual", "invoke", "parallel", "replay", "rerun") with its link (the original run, the
    parent run), its words in full (`badge_title`) and `badge_detail` (a cron schedule, who
    started it). `preview` is the event's data on one line, `preview_title` its longer text
    (`TITLE_CHARS`). `steps` counts the steps it recorded, `failed_attempts` its failed
    attempts (retried, or the last one that ended it), None without any.
    """

    id: str
    href: str
    function_id: str
    function_href: str
    status: str
    status_class: str
    detail: str
    active: bool
    event_name: str | None
    event_href: str | None
    more_events: int
    badge: str | None
    badge_href: str | None
    badge_title: str | None
    badge_detail: str | None
    preview: str
    preview_title: str
    created: Moment
    duration: str
    steps: str
    failed_attempts: str | None
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerView:
    """A function's trigger: an event name (with its CEL condition) or a cron schedule."""

    kind: str
    text: str
    condition: str | None
    href: str | None
    next_fire: Moment | None
    last_fire: Moment | None = None
    missed_fires: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class OptionView:
    """A flow-control option: its name and setting in words, and a link (the failure handler)."""

    label: str
    detail: str
    href: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunNowForm:
    """The "Run now" form: where it posts, what the textarea holds, and why it was refused."""

    action: str
    field_id: str
    value: str
    error: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionCard:
    """A function with its triggers, options, last run, 24-hour record and forms.

    `sdk` names the SDK serving an SDK app's function ("Python SDK"); None for Python apps.
    `toggle_action` pauses a running function or resumes a paused one (`toggle_label`).
    A paused function has its pause's record: since when, by whom and the reason given.
    `retention`: how long its ended runs are kept, "30d (default)" or its own "7d".
    """

    id: str
    name: str | None
    app_id: str
    app_href: str
    sdk: str | None
    paused: bool
    paused_since: Moment | None = None
    paused_by: str | None = None
    pause_reason: str | None = None
    retries: int
    timeout: str | None
    retention: str
    triggers: list[TriggerView]
    options: list[OptionView]
    last_run: RunRow | None
    success: str
    runs_href: str
    form: RunNowForm
    toggle_action: str
    toggle_label: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ProgressView:
    """Progress with a percentage (when a total is known), message and ETA."""

    percent: float | None
    percent_text: str
    figures: str
    message: str | None
    eta: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class LogView:
    """A log line; errors are highlighted."""

    ts: Moment
    level: str
    message: str
    step_id: str | None
    css: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RunPage:
    """Everything the run page shows."""

    id: str
    function_id: str
    function_href: str
    stream_url: str | None
    cancel_action: str
    replay_action: str
    rerun_action: str | None  # None for a parallel branch: its run is the one to rerun
    status: str
    status_class: str
    detail: str
    active: bool
    waiting_for: str | None
    reason: str | None
    cancelled_by_href: str | None
    cancel_requested_by: str | None  # who asked, for a cancel by request
    cancel_reason: str | None  # the reason they gave
    trigger_reason: str | None  # the reason given for starting it (a replay, a rerun)
    parent_href: str | None
    parent_run_id: str | None
    children: list[tuple[str, str, str, str]]  # (run id, href, function id, status)
    trigger: str
    trigger_href: str | None
    replay_of: str | None
    replay_of_href: str | None
    replay_of_label: str  # "Replay of" or "Rerun of"
    dry_run: bool
    created: Moment
    started: Moment | None
    ended: Moment | None
    timeout_at: Moment | None
    start_by: Moment | None
    duration: str
    attempt: int
    progress: ProgressView | None
    counters: list[tuple[str, str]]
    output: JsonBlock | BlobView | None
    error: ErrorView | None
    logs: list[LogView]


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRow:
    """One line of the events table."""

    internal_id: str
    href: str
    name: str
    sender_id: str
    received: Moment
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class EventPage:
    """An event with its payload and the runs it started."""

    row: EventRow
    sent: Moment
    data: JsonBlock
    user: JsonBlock | None
    runs: list[RunRow]


def moment(value: datetime) -> Moment:
    """A datetime as `<time>` text: ISO UTC, and "YYYY-MM-DD HH:MM:SS UTC" for people."""
    utc = value.astimezone(UTC)
    iso = utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Moment(iso=iso, text=f"{utc:%Y-%m-%d %H:%M:%S} UTC")


def maybe_moment(value: datetime | None) -> Moment | None:
    """`moment`, keeping None."""
    return None if value is None else moment(value)


def error_view(text: str) -> ErrorView:
    """A stored error (JSON `{name, message, traceback}`; an SDK app's has `stack`), tolerantly."""
    try:
        value = json.loads(text)
    except ValueError:
        return ErrorView(name="Error", message=text, traceback="")
    if not isinstance(value, dict):
        return ErrorView(name="Error", message=str(value), traceback="")
    return ErrorView(
        name=str(value.get("name") or "Error"),
        message=str(value.get("message") or ""),
        traceback=str(value.get("traceback") or value.get("stack") or ""),
    )


def number(value: float) -> str:
    """12.0 → "12", 2.5 → "2.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return format_duration(max(0.0, (end - start).total_seconds()))


def run_href(run_id: str) -> str:
    """The run page's path."""
    return f"/runs/{quote(run_id, safe='')}"


def output_href(run_id: str, step_hash: str | None = None) -> str:
    """Where the dashboard serves the output of a run (`step_hash` None) or of its step."""
    step = "" if step_hash is None else f"/steps/{quote(step_hash, safe='')}"
    return f"{run_href(run_id)}{step}/output"


def function_page_href(function_id: str) -> str:
    """The function page's path."""
    return f"/functions/{quote(function_id, safe='')}"


def function_href(function_id: str) -> str:
    """The function's card on the functions page."""
    return f"/functions#function-{quote(function_id, safe='')}"


def app_href(app_id: str) -> str:
    """The app's card on the Apps page."""
    return f"/apps#app-{quote(app_id, safe='')}"


def event_href(internal_id: str) -> str:
    """The event page's path."""
    return f"/events/{quote(internal_id, safe='')}"


def runs_href(**params: str | None) -> str:
    """The runs page with these filters (empty ones dropped)."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/runs?{query}" if query else "/runs"


def _status_class(status: str) -> str:
    return f"status status-{status.lower()}"


def _trigger_text(run: RunRecord) -> str:
    if run.trigger_kind in ("replay", "rerun"):
        return run.trigger_kind
    return f"{run.trigger_kind} by {run.trigger_by}" if run.trigger_by else run.trigger_kind


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _badge(run: RunRecord) -> tuple[str | None, str | None, str | None, str | None]:
    """A runs-table trigger badge: its text, link, words in full, and the text after it."""
    kind, by = run.trigger_kind, run.trigger_by
    if kind in _BY_ORIGINAL and run.replay_of:
        title = f"{'Rerun' if kind == 'rerun' else 'Replay'} of run {run.replay_of}"
        return kind, run_href(run.replay_of), title, None
    if kind in _BY_PARENT and by:
        title = f"Started by a step of run {by}"
        return kind, run_href(by), title, None
    if kind == "cron":
        return kind, None, "Started by a cron tick", by
    if kind == "event":
        return None, None, None, None
    return kind, None, f"Started {kind}", f"by {by}" if by else None


_ESCAPE = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.I)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[,:]|[^",:]+')
_PARTIAL = re.compile(r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}|u[0-9a-fA-F]{0,3})?$")  # a cut escape


def _unescaped(match: re.Match[str]) -> str:
    """A JSON escape of a character `json.dumps(..., ensure_ascii=False)` writes as itself."""
    high, low, single = match.groups()
    if high:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00)
    code = int(single, 16) if single else 0
    return chr(code) if code >= 0x80 and not 0xD800 <= code < 0xE000 else match.group(0)


def _spaced(text: str) -> str:
    """The start of compact JSON text, written as `data_preview` writes whole values."""
    parts = []
    for token in _TOKEN.findall(_PARTIAL.sub("", text)):
        if token.startswith('"'):
            parts.append(_ESCAPE.sub(_unescaped, token))
        else:
            parts.append({",": ", ", ":": ": "}.get(token, token))
    return "".join(parts)


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def stored_preview(summary: RunSummary) -> tuple[str, str]:
    """A run's event data on one line and on hover, from the start of it the store read."""
    data, length = summary.data, summary.data_length
    if data is None:
        return "", ""
    if len(data) == length:
        value = json.loads(data)
        return data_preview(value), data_preview(value, TITLE_CHARS)
    text = _spaced(data)
    return _cut(text, PREVIEW_CHARS), _cut(text, TITLE_CHARS)


def run_row(run: RunRecord, now: datetime, summary: RunSummary | None = None) -> RunRow:
    """A runs-table line; an active run's duration counts up to `now`.

    `summary` (`Store.run_summaries`) adds the event's name and data, and the step count.
    """
    badge, badge_href, badge_title, badge_detail = _badge(run)
    preview, preview_title = stored_preview(summary) if summary else ("", "")
    own_event = summary is not None and run.trigger_kind in _OWN_EVENT
    return RunRow(
        id=run.id,
        href=run_href(run.id),
        function_id=run.function_id,
        function_href=function_page_href(run.function_id),
        status=run.status,
        status_class=_status_class(run.status),
        detail=run.detail or "",
        active=not run.ended,
        event_name=summary.event_name if own_event and summary else None,
        event_href=event_href(run.event_id) if run.event_id else None,
        more_events=max(0, len(run.event_ids) - 1),
        badge=badge,
        badge_href=badge_href,
        badge_title=badge_title,
        badge_detail=badge_detail,
        preview=preview,
        preview_title=preview_title,
        created=moment(run.created_at),
        duration=_duration(run.started_at, run.ended_at or (now if run.started_at else None)),
        steps=_plural(summary.steps, "step") if summary else "",
        failed_attempts=_plural(run.failures, "failed attempt") if run.failures else None,
        dry_run=run.dry_run,
    )


def _trigger_view(
    config: dict[str, Any], now: datetime, states: Mapping[str, CronState]
) -> TriggerView:
    if "cron" in config:
        cron = CronTrigger(expression=config["cron"], tz=config["tz"], missed=config["missed"])
        state = states.get(cron.schedule)
        return TriggerView(
            kind="cron",
            text=f"{cron.expression} ({cron.tz})",
            condition=None,
            href=None,
            next_fire=moment(cron.next_after(now)),
            last_fire=None if state is None else moment(state.last_tick),
            missed_fires=0 if state is None else state.missed_total,
        )
    return TriggerView(
        kind="event",
        text=config["event"],
        condition=config.get("if"),
        href=f"/events?{urlencode({'name': config['event']})}",
        next_fire=None,
    )


def _option_views(config: dict[str, Any]) -> list[OptionView]:
    return [
        OptionView(
            label=line.label,
            detail=line.detail,
            href=function_href(line.detail) if line.key == "on_failure" else None,
        )
        for line in option_lines(config)
    ]


def retention_text(config: dict[str, Any], default: Retention) -> str:
    """A function's retention in words: its own "7d", or "30d (default)"."""
    view = retention_view(config, default)
    return str(view["text"]) if view["source"] == "function" else f"{view['text']} (default)"


def success_text(ended: dict[str, int] | None) -> str:
    """The last 24 hours as text: "95% (19 of 20 ended)", or "no runs ended"."""
    ended = ended or {}
    rate = success_rate(ended)
    if rate is None:
        return "no runs ended"
    total = sum(ended.values())
    return f"{number(round(rate * 100, 1))}% ({ended.get('COMPLETED', 0)} of {total} ended)"


def function_card(
    fn: FunctionRecord,
    stats: FunctionStats | None,
    now: datetime,
    *,
    cron: Mapping[str, CronState] | None = None,
    payload: str = "{}",
    error: str | None = None,
    sdk: str | None = None,
    retention: Retention = DEFAULT_RETENTION,
) -> FunctionCard:
    """A function card; `payload` and `error` refill a refused "Run now" form.

    `stats` is the function's entry from `Store.function_stats` over the last 24 hours; `sdk`
    names the SDK serving it, if its app is an SDK app ("TS SDK"); `retention` is the
    default retention, for a function without its own.
    """
    config = json.loads(fn.config)
    timeout = config.get("timeout_seconds")
    last_run = stats.last_run if stats is not None else None
    action = f"/functions/{quote(fn.id, safe='')}"
    return FunctionCard(
        id=fn.id,
        name=fn.name if fn.name != fn.id else None,
        app_id=fn.app_id,
        app_href=app_href(fn.app_id),
        sdk=sdk,
        paused=fn.paused,
        paused_since=maybe_moment(fn.paused_at) if fn.paused else None,
        paused_by=fn.paused_by if fn.paused else None,
        pause_reason=fn.pause_reason if fn.paused else None,
        retries=int(config.get("retries", 0)),
        timeout=format_duration(timeout) if timeout else None,
        retention=retention_text(config, retention),
        triggers=[_trigger_view(t, now, cron or {}) for t in config.get("triggers", [])],
        options=_option_views(config),
        last_run=run_row(last_run, now) if last_run else None,
        success=success_text(dict(stats.ended) if stats is not None else None),
        runs_href=runs_href(function_id=fn.id),
        form=RunNowForm(
            action=f"{action}/invoke",
            field_id=f"payload-{fn.id}",
            value=payload,
            error=error,
        ),
        toggle_action=f"{action}/resume" if fn.paused else f"{action}/pause",
        toggle_label="Resume" if fn.paused else "Pause",
    )


def _progress(run: RunRecord, now: datetime) -> ProgressView | None:
    view = progress_view(run, now)
    if view is None:
        return None
    done, total = view["done"], view["total"]
    percent = view["percent"]
    eta = view["eta_seconds"]
    return ProgressView(
        percent=percent,
        percent_text=f"{percent:g}%" if percent is not None else "",
        figures=f"{number(done)} of {number(total)}" if total else number(done),
        message=view["message"],
        eta=f"about {format_duration(eta)} left" if eta is not None else None,
    )


def log_view(log: LogRecord) -> LogView:
    """A log line as a table row or a panel line shows it."""
    return LogView(
        ts=moment(log.ts),
        level=log.level,
        message=log.message,
        step_id=log.step_id,
        css="log log-error" if log.level.lower() in ERROR_LEVELS else "log",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerEvent:
    """The event that started a run: its name, a one-line preview of its data, the data.

    `more` counts the other events of a batch.
    """

    name: str
    href: str
    preview: str
    payload: JsonBlock
    more: int


def trigger_event(events: Sequence[EventRecord]) -> TriggerEvent | None:
    """The run page's trigger line for the run's events (None for a run without one)."""
    if not events:
        return None
    first = events[0]
    data = json.loads(first.data)
    return TriggerEvent(
        name=first.name,
        href=event_href(first.internal_id),
        preview=data_preview(data),
        payload=json_block(data),
        more=len(events) - 1,
    )


def data_preview(data: Any, chars: int = PREVIEW_CHARS) -> str:
    """Event data as compact JSON on one line, cut at `chars` with an ellipsis."""
    return _cut(json.dumps(data, ensure_ascii=False, separators=(", ", ": ")), chars)


def run_page(detail: RunDetail, now: datetime) -> RunPage:
    """The run page's model; an active run is drawn up to `now`."""
    run = detail.run
    end = run.ended_at or now
    counters = json.loads(run.counters)
    return RunPage(
        id=run.id,
        function_id=run.function_id,
        function_href=function_page_href(run.function_id),
        stream_url=None if run.ended else f"{run_href(run.id)}/stream",
        cancel_action=f"{run_href(run.id)}/cancel",
        replay_action=f"{run_href(run.id)}/replay",
        rerun_action=None if run.trigger_kind == "parallel" else f"{run_href(run.id)}/rerun",
        status=run.status,
        status_class=_status_class(run.status),
        detail=run.detail or "",
        active=not run.ended,
        waiting_for=detail.waiting_for,
        reason=run.reason,
        cancelled_by_href=event_href(run.cancelled_by) if run.cancelled_by else None,
        cancel_requested_by=run.cancel_requested_by if run.status == "CANCELLED" else None,
        cancel_reason=run.cancel_reason,
        trigger_reason=run.trigger_reason,
        parent_href=run_href(run.parent_run_id) if run.parent_run_id else None,
        parent_run_id=run.parent_run_id,
        children=[(c.id, run_href(c.id), c.function_id, c.status) for c in detail.children],
        trigger=_trigger_text(run),
        trigger_href=event_href(run.event_id) if run.event_id else None,
        replay_of=run.replay_of,
        replay_of_href=run_href(run.replay_of) if run.replay_of else None,
        replay_of_label="Rerun of" if run.trigger_kind == "rerun" else "Replay of",
        dry_run=run.dry_run,
        created=moment(run.created_at),
        started=maybe_moment(run.started_at),
        ended=maybe_moment(run.ended_at),
        timeout_at=maybe_moment(run.timeout_at),
        start_by=maybe_moment(run.start_by) if run.started_at is None and not run.ended else None,
        duration=_duration(run.started_at, end if run.started_at else None),
        attempt=run.attempt + 1,
        progress=_progress(run, now),
        counters=[(name, number(value)) for name, value in sorted(counters.items())],
        output=output_block(run.output, output_href(run.id)),
        error=error_view(run.error) if run.error is not None else None,
        logs=[log_view(log) for log in detail.logs],
    )


def event_row(event: EventRecord) -> EventRow:
    """An events-table line."""
    return EventRow(
        internal_id=event.internal_id,
        href=event_href(event.internal_id),
        name=event.name,
        sender_id=event.id,
        received=moment(event.received_at),
        source=event.source,
    )


def event_page(event: EventRecord, runs: Sequence[RunRecord], now: datetime) -> EventPage:
    """The event page's model."""
    user = json.loads(event.user)
    return EventPage(
        row=event_row(event),
        sent=moment(datetime.fromtimestamp(event.ts / 1000, UTC)),
        data=json_block(json.loads(event.data)),
        user=json_block(user) if user else None,
        runs=[run_row(r, now) for r in runs],
    )
