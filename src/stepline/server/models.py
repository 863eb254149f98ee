"""The REST API's request and response models (pydantic 2): what is parsed, and the schema.

Request models parse query strings and bodies (`parse`); response models describe what the
handlers send (`engine.views` builds it) and generate the OpenAPI schema with the route table
in `server/app.py`. Every model forbids unknown fields, so the schema says exactly what is sent
and a drift between a view and its model fails the schema tests.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    StrictBool,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from stepline import errors
from stepline.engine import events
from stepline.engine.apps import serve_url_problem
from stepline.engine.reasons import MAX_REASON_CHARS
from stepline.server.intake import MAX_EVENTS_PER_REQUEST
from stepline.store.base import RunFilter, RunStatus, TriggerKind

MAX_LIMIT = 500
MAX_QUERY_LENGTH = 200
NO_NUL = r"^[^\x00]*$"
"""The JSON Schema pattern of text the stores take (PostgreSQL refuses NUL)."""
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _storable(value: str) -> str:
    """No stored text holds NUL or a lone surrogate (PostgreSQL takes neither)."""
    if "\x00" in value or not _encodes(value):
        raise ValueError("must not contain NUL characters or lone surrogates")
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class _NoNul:
    """Says in the JSON schema what `_storable` enforces (as far as a pattern can)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = NO_NUL
        return schema


def _rfc3339(value: Any) -> Any:
    """RFC 3339 text (any year from 0001, any offset) to an aware datetime; nothing else."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-05-01T12:00:00Z")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise ValueError(f"is not a valid date-time: {exc}") from None


def _whole_number(value: Any) -> Any:
    """Query text of an integer is only digits (pydantic alone takes "5.0", " 5" or "1_0")."""
    if isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value):
        raise ValueError("must be a whole number")
    return value


def _empty_is_none(value: Any) -> Any:
    """An empty query value (`?before=`) means the parameter is absent."""
    return None if value == "" else value


Text = Annotated[str, AfterValidator(_storable), _NoNul()]
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    Field(description="RFC 3339 with a time zone offset, e.g. 2026-05-01T12:00:00Z"),
]
Cursor = Annotated[
    Text | None,
    BeforeValidator(_empty_is_none),
    Field(description="the next_cursor of the last page (empty: the first page)"),
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(_whole_number)]


def _query_flag(value: Any) -> Any:
    """A query string's "true" or "false" as a boolean; anything else stays (and is refused)."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


# JSON bodies take true or false only (not 0, 1 or "yes"); query strings "true" or "false".
QueryFlag = Annotated[StrictBool, BeforeValidator(_query_flag)]


def _bounded_reason(value: str) -> str:
    """At most `MAX_REASON_CHARS` characters, said in characters (pydantic says "items")."""
    if len(value) > MAX_REASON_CHARS:
        raise ValueError(f"must be at most {MAX_REASON_CHARS} characters (got {len(value)})")
    return value


Reason = Annotated[
    Text,
    AfterValidator(_bounded_reason),
    Field(
        description="why, in a person's words: stored and shown with what it acted on "
        "(optional; blank is none)",
        json_schema_extra={"maxLength": MAX_REASON_CHARS},
    ),
]


WHO = (
    'the API token\'s name, "dashboard:<token name>" or "client" (a local Client); on an open '
    'server "api" or "dashboard"'
)


class Model(BaseModel):
    """A model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------


class RunSelection(Model):
    """Which runs: every criterion given must hold (`created_*` is the window [after, before))."""

    function_id: Text | None = None
    status: RunStatus | None = None
    trigger_kind: TriggerKind | None = None
    dry_run: StrictBool | None = Field(
        default=None, description="only dry runs (true) or real ones"
    )
    error_name: Text | None = Field(
        default=None,
        max_length=255,
        description='the error\'s class name, e.g. "TimeoutError" (failed runs and SDK errors)',
    )
    event_id: Text | None = Field(default=None, description="internal or sender's event id")
    created_after: Moment | None = None
    created_before: Moment | None = None
    q: Text | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description=(
            "Text inside the triggering event's data (as JSON), case-insensitive. No index "
            "serves it: each run left by the other criteria costs a look at its event, so "
            "narrow with function_id or created_after on large stores."
        ),
    )

    def run_filter(self, *, before: str | None = None, limit: int = 50) -> RunFilter:
        """The store's filter for these criteria."""
        return RunFilter(
            function_id=self.function_id,
            status=self.status,
            trigger_kind=self.trigger_kind,
            dry_run=self.dry_run,
            error_name=self.error_name,
            event_id=self.event_id,
            created_after=self.created_after,
            created_before=self.created_before,
            q=self.q,
            before=before,
            limit=limit,
        )


class BulkSelection(RunSelection):
    """The runs a bulk cancel or replay acts on; at least one criterion is required.

    `run_ids` selects runs one by one (with other criteria, a run must also match them). With
    `preview`, nothing is touched: the answer counts the runs and shows a sample.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": [name]} for name in [*RunSelection.model_fields, "run_ids"]]
        }
    )
    run_ids: list[Text] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LIMIT,
        description="only the runs with these ids",
    )
    preview: StrictBool = Field(
        default=False, description="count the runs and show a sample; touch nothing"
    )
    reason: Reason | None = None

    def run_filter(self, *, before: str | None = None, limit: int = 50) -> RunFilter:
        """The store's filter for these criteria and ids."""
        found = super().run_filter(before=before, limit=limit)
        return found if self.run_ids is None else replace(found, run_ids=tuple(self.run_ids))

    @model_validator(mode="after")
    def _some_criterion(self) -> BulkSelection:
        criteria = self.model_dump(exclude={"preview", "reason"})
        if all(value is None for value in criteria.values()):
            raise ValueError('give at least one criterion, e.g. {"function_id": "..."}')
        return self


class RunQuery(RunSelection):
    """`GET /v1/runs`: criteria, then a page of `limit` runs after the `before` cursor."""

    dry_run: QueryFlag | None = Field(default=None, description="only dry runs (true) or real ones")
    before: Cursor = None
    limit: Limit = 50


class EventQuery(Model):
    """`GET /v1/events`: by exact name or a name's start, in [received_after, received_before)."""

    name: Text | None = None
    name_prefix: Text | None = Field(
        default=None, description='Only events whose name starts with this, e.g. "shop/"'
    )
    received_after: Moment | None = None
    received_before: Moment | None = None
    before: Cursor = None
    cursor: Cursor = Field(default=None, description="Inngest's name for `before`")
    limit: Limit = 50

    @model_validator(mode="after")
    def _one_cursor(self) -> EventQuery:
        if self.before is not None and self.cursor is not None:
            raise ValueError("give before or cursor, not both")
        return self

    @property
    def start(self) -> str | None:
        """The cursor the page starts after (`before` or `cursor`)."""
        return self.before or self.cursor


class EventIn(Model):
    """An event to send (Inngest's shape). `id` deduplicates for 24 hours; null is as absent.

    Only the schema: `engine.events.build_event` checks events, with its own field names.
    """

    name: str = Field(
        min_length=1,
        max_length=events.MAX_NAME_LENGTH,
        description="not blank; `stepline/` and `inngest/` are reserved",
        json_schema_extra={
            "allOf": [{"pattern": r"\S"}, {"pattern": NO_NUL}],
            "not": {"pattern": "^(stepline|inngest)/"},
        },
    )
    data: dict[str, Any] | None = Field(
        default=None, description=f"its `{events.RESERVED_DATA_KEY}` key is reserved and dropped"
    )
    user: dict[str, Any] | None = None
    id: Annotated[str, _NoNul()] | None = Field(default=None, max_length=events.MAX_ID_LENGTH)
    ts: Annotated[
        int | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"const": 0},
                    {"type": "integer", "minimum": events.MIN_TS, "maximum": events.MAX_TS},
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(default=None, description="milliseconds since the epoch (1980 to 2100; 0: now)")
    v: str | None = Field(default=None, description="the event's schema version")


class EventsIn(
    RootModel[EventIn | Annotated[list[EventIn], Field(max_length=MAX_EVENTS_PER_REQUEST)]]
):
    """One event, or a list sent as a whole (all or none; an empty list stores nothing)."""


class IntakeEventIn(EventIn):
    """An event sent to `/e/{event_key}`: its `data` and `user` up to 3 MiB, as Inngest takes."""

    meta: dict[str, Any] | None = Field(
        default=None, description="the JS SDK v4's session metadata: taken, not stored"
    )


class IntakeEventsIn(
    RootModel[
        IntakeEventIn | Annotated[list[IntakeEventIn], Field(max_length=MAX_EVENTS_PER_REQUEST)]
    ]
):
    """One event, or a list sent as a whole (all or none; an empty list stores nothing).

    A request carrying `X-Inngest-Event-Id-Seed` is stored once however often it is retried.
    """


def _serve_url(value: str) -> str:
    """An http(s) URL with a host, as an SDK app is served at."""
    problem = serve_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class SyncAppBody(Model):
    """`POST /v1/apps`: the serve URL of the SDK app to sync."""

    url: Annotated[Text, AfterValidator(_serve_url)] = Field(
        max_length=2048,
        description="where the app serves its Inngest SDK, e.g. http://localhost:3000/api/inngest",
        json_schema_extra={"format": "uri", "pattern": "^https?://"},
    )


class InvokeBody(Model):
    """`POST /v1/functions/{id}/invoke`: the run's event data (absent: `{}`), a dry run?"""

    data: dict[str, Any] = Field(default_factory=dict)
    dry_run: StrictBool = Field(
        default=False, description="a dry run: what it sends is recorded, not sent"
    )


class RerunBody(Model):
    """`POST /v1/runs/{id}/rerun`: where the new run starts and what it runs with."""

    from_step: Text | None = Field(
        default=None,
        max_length=255,
        description="the step to execute from: the finished steps before it are reused "
        "(absent: none, from the start)",
    )
    data: dict[str, Any] | None = Field(
        default=None, description="the event data to run with (absent: the original event's)"
    )
    dry_run: StrictBool | None = Field(
        default=None, description="a dry run or not (absent: as the original run)"
    )
    reason: Reason | None = None


class ReasonBody(Model):
    """A cancel, replay or pause: the reason for it, if given (the body is optional)."""

    reason: Reason | None = None


# -- responses -----------------------------------------------------------------------------


class Error(Model):
    """Every error: a message, the HTTP status and, for bad input, the offending field."""

    error: str
    status: int
    field: str | None = None


class IntakeResponse(Model):
    """`POST /e/{event_key}`: the ids of the events, in order (empty on error)."""

    ids: list[str]
    status: int
    error: str | None = None
    field: str | None = None


class TriggerInfo(Model):
    """How a run started."""

    kind: TriggerKind
    by: str | None
    reason: str | None = Field(description="the reason given for starting it (a replay, a rerun)")
    event_id: str | None
    event_ids: list[str]


class Progress(Model):
    """Progress reported with `ctx.progress`, with a percentage and an ETA when known.

    The ETA is the pace up to the last report (`reported_at`), counted down since then.
    """

    done: float
    total: float | None
    message: str | None
    percent: float | None
    eta_seconds: float | None
    reported_at: datetime | None


class Cancellation(Model):
    """A cancel by request: when, who asked and the reason they gave."""

    at: datetime
    requested_by: str = Field(description=WHO)
    reason: str | None = Field(description="null when none was given")


class OutputBlob(Model):
    """An output kept as a blob (over the inline limit): not inlined, downloaded on its own."""

    size: int = Field(description="Bytes of JSON")
    download_url: str = Field(
        description="The path that serves its JSON as a file (GET, the `read` role)"
    )


OUTPUT = "The result as JSON; null while there is none, and for an output in `output_blob`"
OUTPUT_BLOB = "A large output's size and download URL (null when `output` holds it)"


class Run(Model):
    """A run's summary."""

    id: str
    function_id: str
    status: RunStatus
    detail: str | None
    waiting_for: str | None = Field(
        description="Why an active run is not executing, e.g. "
        '"waiting for concurrency slot: key="acme"" (null when it is executing or ended)'
    )
    reason: str | None = Field(description="Why it was skipped or cancelled, in words")
    cancelled_by: str | None = Field(description="The event that cancelled it (`cancel_on`)")
    cancellation: Cancellation | None = Field(
        description="Who asked to cancel it, when and why; null unless cancelled by request"
    )
    parent_run_id: str | None = Field(
        description="The run whose step started it (`step.invoke`, a `step.parallel` branch)"
    )
    start_by: datetime | None
    dry_run: bool = Field(description="A dry run: what it sent is recorded on its log, not sent")
    trigger: TriggerInfo
    replay_of: str | None
    attempt: int
    output: Any = Field(description=OUTPUT)
    output_blob: OutputBlob | None = Field(description=OUTPUT_BLOB)
    error: Any
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    timeout_at: datetime | None
    progress: Progress | None
    counters: dict[str, float]


class Step(Model):
    """A step with its outcome and timing."""

    id: str
    hash: str
    kind: str
    status: str
    position: int
    attempts: int
    output: Any = Field(description=OUTPUT)
    output_blob: OutputBlob | None = Field(description=OUTPUT_BLOB)
    error: Any
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float | None
    wake_at: datetime | None


class Attempt(Model):
    """A failed attempt of a step, or of the function (`step_id` null)."""

    step_id: str | None
    step_hash: str | None
    attempt: int
    error: Any
    started_at: datetime
    ended_at: datetime
    retry_at: datetime | None


class Log(Model):
    """A line written with `ctx.log`."""

    ts: datetime
    level: str
    message: str
    step_id: str | None


class ChildRun(Model):
    """A run started by one of this run's steps."""

    id: str
    function_id: str
    kind: TriggerKind
    parent_step: str | None
    status: RunStatus


class StepInFlight(Model):
    """The step an active run is executing now (as its worker's last heartbeat said), since when.

    Only for Python functions executed in-process; null for SDK apps' runs.
    """

    step_id: str
    since: datetime


class RunDetail(Run):
    """A run with its steps, failed attempts and log lines, and its step in flight."""

    in_flight: StepInFlight | None
    children: list[ChildRun]
    steps: list[Step]
    attempts: list[Attempt]
    logs: list[Log]


class Event(Model):
    """A stored event: `internal_id` is the server's, `id` the sender's (or the same)."""

    internal_id: str
    id: str
    name: str
    data: dict[str, Any]
    user: dict[str, Any]
    ts: int
    received_at: datetime
    source: str


class EventTrigger(Model):
    """Runs start for events of this name, when the CEL condition `if` holds."""

    model_config = ConfigDict(populate_by_name=True)

    event: str
    if_: str | None = Field(default=None, alias="if")


class CronTrigger(Model):
    """Runs start at each tick of `cron` in the zone `tz`; times are in that zone.

    `last_fire_at` is the last tick the scheduler accounted for: fired, skipped by the missed
    policy or, for a new schedule, the moment it started counting (null until a scheduler saw
    it). `missed_fires` counts ticks that fell due while no scheduler ran and were never run.
    """

    cron: str
    tz: str
    missed: Literal["latest", "skip"]
    next_fire_at: datetime
    last_fire_at: datetime | None
    missed_fires: int


class ConcurrencyOption(Model):
    """At most `limit` runs executing at once per value of the CEL `key` (null: one key).

    Scope "all" shares the key, and so its slots, with every function using it.
    """

    limit: int
    key: str | None
    scope: Literal["function", "all"]


class ThrottleOption(Model):
    """At most `limit` run starts per period per key, `burst` at once; excess triggers wait."""

    limit: int
    period_seconds: float
    burst: int
    key: str | None


class RateLimitOption(Model):
    """At most `limit` runs per period per key; excess triggers start nothing (skipped)."""

    limit: int
    period_seconds: float
    key: str | None


class DebounceOption(Model):
    """One run a period after the last trigger per key; `timeout_seconds` bounds the delay."""

    period_seconds: float
    key: str | None
    timeout_seconds: float | None


class PriorityOption(Model):
    """`run`: a CEL expression giving a run's head start in seconds (-600 to 600)."""

    run: str


class BatchOption(Model):
    """One run per batch of up to `max_size` events per key, at most `timeout_seconds` late."""

    max_size: int
    timeout_seconds: float
    key: str | None


class SingletonOption(Model):
    """At most one active run per key: a new trigger is skipped, or cancels the active run."""

    mode: Literal["skip", "cancel"]
    key: str | None


class CancelOnOption(Model):
    """An event named `event` cancels the run when the CEL condition `if` holds.

    The run listens for `timeout_seconds` (null: as long as it is active).
    """

    model_config = ConfigDict(populate_by_name=True)

    event: str
    if_: str | None = Field(alias="if")
    timeout_seconds: float | None


class FunctionOptions(Model):
    """A function's flow-control options, as registered; only the options set are present."""

    concurrency: list[ConcurrencyOption] | None = Field(default=None, min_length=1, max_length=2)
    throttle: ThrottleOption | None = None
    rate_limit: RateLimitOption | None = None
    debounce: DebounceOption | None = None
    priority: PriorityOption | None = None
    batch_events: BatchOption | None = None
    idempotency: str | None = Field(
        default=None, description="CEL key: one run per value in 24 hours, later ones skipped"
    )
    singleton: SingletonOption | None = None
    cancel_on: list[CancelOnOption] | None = None
    start_timeout_seconds: float | None = Field(
        default=None, description="longest time queued before the run starts (else cancelled)"
    )
    on_failure: str | None = Field(
        default=None, description="the id of the function run when a run fails for good"
    )


class LastRun(Model):
    """A function's newest run."""

    id: str
    status: RunStatus
    created_at: datetime


class Pause(Model):
    """The pause in force: since when, who paused the function and the reason they gave."""

    at: datetime | None = Field(description="null for a pause older than this record")
    by: str | None = Field(description=WHO)
    reason: str | None = Field(description="null when none was given")


class Retention(Model):
    """How long a function's ended runs are kept before the scheduler prunes them."""

    seconds: float | None = Field(description="null: kept forever")
    text: str = Field(description='in words: "30d", "12h", "forever"')
    source: Literal["function", "default"] = Field(
        description="function: its own `retention=`; default: the workers' `--retain`"
    )


class Function(Model):
    """A registered function: triggers, options, newest run and the last 24 hours."""

    id: str
    app_id: str
    app_kind: Literal["python", "sdk"] = Field(
        description="python: registered by a process loading it; sdk: synced from an SDK app"
    )
    url: str | None = Field(description="an SDK app's function: where its SDK serves it")
    name: str
    paused: bool
    pause: Pause | None = Field(description="the pause in force; null when not paused")
    triggers: list[EventTrigger | CronTrigger]
    retries: int
    timeout_seconds: float | None
    options: FunctionOptions
    option_summaries: list[str] = Field(
        description='each option in words, e.g. "throttle 10 per 1m (burst 1)"'
    )
    retention: Retention
    last_run: LastRun | None
    ended_24h: dict[str, int] = Field(description="runs ended in the last 24 h, by status")
    success_rate_24h: float | None = Field(
        description="COMPLETED / ended in the last 24 h; null when none ended"
    )


class App(Model):
    """An app: functions registered by a Python process, or synced from an Inngest SDK app."""

    id: str
    kind: Literal["python", "sdk"]
    url: str | None = Field(description="an SDK app's serve URL")
    sdk: str | None = Field(description='an SDK app\'s SDK and version, e.g. "py:v0.5.19"')
    framework: str | None = Field(description='e.g. "fast_api", "express"')
    app_version: str | None
    synced_at: datetime = Field(
        description="a Python app: its last registration; an SDK app: its last sync that "
        "changed something"
    )
    functions: list[str] = Field(description="the ids of its functions")


class Worker(Model):
    """A worker; `alive` means its claim loop reported within three heartbeat periods."""

    id: str
    hostname: str
    pid: int
    slots: int
    inflight: int = Field(description="runs executing, including abandoned steps")
    functions: list[str]
    started_at: datetime
    heartbeat_at: datetime
    seconds_since_heartbeat: float
    heartbeat_seconds: float
    alive: bool
    stopping: bool
    abandoned: int = Field(
        description="slots held by abandoned steps: steps still executing although their run "
        "was cancelled, timed out or taken over; a worker whose slots are all held exits"
    )
    healthy: bool = Field(description="alive, and no slot is held by an abandoned step")


class EventIds(Model):
    """The ids of sent events, in order."""

    ids: list[str]


class RunId(Model):
    """The id of a run just started."""

    run_id: str


class Affected(Model):
    """How many runs a bulk action changed or started; a preview's count and sample instead."""

    affected: int
    preview: bool = Field(default=False, description="true: nothing was touched")
    count: int | None = Field(default=None, description="a preview: how many runs it would touch")
    sample: list[Run] | None = Field(
        default=None, description="a preview: the newest of those runs (at most 10)"
    )


class RunsPage(Model):
    """Runs, newest first; pass `next_cursor` as `before` for the next page (null: last)."""

    data: list[Run]
    next_cursor: str | None


class EventsPage(Model):
    """Events, newest first; pass `next_cursor` as `before` for the next page (null: last)."""

    data: list[Event]
    next_cursor: str | None


class RunList(Model):
    """Runs."""

    data: list[Run]


class RunResponse(Model):
    """One run."""

    data: Run


class RunDetailResponse(Model):
    """One run in full."""

    data: RunDetail


class EventResponse(Model):
    """One event."""

    data: Event


class SentResponse(Model):
    """The events were stored."""

    data: EventIds


class CreatedRun(Model):
    """A run was started."""

    data: RunId


class AffectedResponse(Model):
    """A bulk action's count."""

    data: Affected


class FunctionList(Model):
    """Registered functions."""

    data: list[Function]


class FunctionResponse(Model):
    """One function."""

    data: Function


class AppList(Model):
    """Apps, by id."""

    data: list[App]


class AppResponse(Model):
    """One app."""

    data: App


class WorkerList(Model):
    """Registered workers."""

    data: list[Worker]


# -- Inngest's shapes (protocol §11), for Inngest clients (see server/inngest/rest.py) ------


class InngestMetadata(Model):
    """When the answer was read."""

    fetched_at: datetime


class InngestEvent(Model):
    """A stored event as Inngest's REST API shows it (system events under `inngest/` names)."""

    internal_id: str
    account_id: str
    environment_id: str
    source: str
    source_id: None
    received_at: datetime
    id: str
    name: str
    data: dict[str, Any]
    user: dict[str, Any]
    ts: int


class InngestRun(Model):
    """A run as Inngest's REST API shows it; `output` is a failed run's error."""

    run_id: str
    run_started_at: datetime
    function_id: str
    function_version: int
    environment_id: str
    event_id: str | None
    original_run_id: str | None = Field(default=None, description="absent unless a replay")
    status: Literal["Scheduled", "Running", "Completed", "Failed", "Cancelled", "Skipped"]
    ended_at: datetime | None
    output: Any = Field(default=None, description="absent until the run has a result or error")


class InngestEvents(Model):
    """Events, newest first (page with `cursor` = the last one's `internal_id`)."""

    data: list[InngestEvent]
    metadata: InngestMetadata


class InngestEventResponse(Model):
    """One event."""

    data: InngestEvent
    metadata: InngestMetadata


class InngestRuns(Model):
    """Runs."""

    data: list[InngestRun]
    metadata: InngestMetadata


class InngestRunResponse(Model):
    """One run."""

    data: InngestRun
    metadata: InngestMetadata


# -- parsing -------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], value: Any, *, where: Literal["query", "body"]) -> M:
    """Validate a query string (as a dict) or a JSON body; `InvalidInput` names the field.

    An unknown query parameter is named; a body's unknown field or wrong shape names "body"
    (the message says which field). A body is a JSON object whose fields are never null.
    """
    if where == "body":
        _check_body(model, value)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            message = f"unknown {'query parameter' if where == 'query' else 'field'} {path!r}"
            raise errors.InvalidInput(message, path if where == "query" else "body") from None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise errors.InvalidInput(message, path or where) from None


def _check_body(model: type[BaseModel], value: Any) -> None:
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"must be a JSON object, not {events.json_type(value)}", "body")
    for name, item in value.items():
        if item is None and name in model.model_fields:
            raise errors.InvalidInput("must not be null (leave it out instead)", name)
