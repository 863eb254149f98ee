"""The dashboard's bulk replay and cancel: the runs page's filters or selection → preview → do.

The preview (GET) touches nothing: it says what the filter selects, how many runs the action
would touch (for cancel, only the active ones) and the newest of them. Its Confirm button
posts the same filter with the count it showed and a fingerprint of the runs' ids; when the
runs matching have changed since (in number, or other runs in place of some), nothing is done
and the preview is shown again saying so, so that nobody acts on runs they did not see. (The
check and the action are two calls: a run changing in the instant between them is not
caught.) Its optional reason is kept with each run cancelled, or each new run of a replay; one
too long shows the preview again with the text kept. Done, it goes back to the runs page
saying how many runs it replayed or cancelled.
The actions are `Operations.replay_matching` and `cancel_matching`, as the API's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline import errors
from stepline.engine.operations import MAX_BULK_RUNS, Operations
from stepline.server import dashboard_models as models
from stepline.server.dashboard_auth import acting
from stepline.server.dashboard_filters import (
    criteria,
    filter_params,
    has_criteria,
    moment_text,
    run_filter,
)
from stepline.server.dashboard_reasons import ReasonField, reason_field
from stepline.server.errors import public_error
from stepline.server.forms import read_form
from stepline.server.templating import page
from stepline.store.base import RunFilter, RunRecord

Action = Literal["replay", "cancel"]
Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request, Inner], Awaitable[Response]]
Context = Callable[..., dict[str, Any]]
ERROR_CHARS = 160  # of a sample run's error message
REASON_HINTS = {"cancel": "kept with each run cancelled", "replay": "kept with each new run"}


@dataclass(frozen=True, kw_only=True, slots=True)
class BulkLinks:
    """The runs page's bulk actions for its filters: links to their previews."""

    replay_href: str
    cancel_href: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Notice:
    """What the runs page says after a bulk action, with a link to what it made."""

    text: str
    href: str | None = None
    link_text: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleRow:
    """A run the action would touch: a runs-table line with its error."""

    row: models.RunRow
    error: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BulkPreview:
    """The preview page: the action, the filter in words, the count, a sample, and the form.

    `fields` are the hidden fields of the Confirm form: the filter, the count shown and
    `selection`, the fingerprint of the matching runs' ids (`selection_digest`). `can_confirm`
    is false when nothing matches or the action would be refused (`error`).
    `notice` says that the selection changed between the preview and the confirm; `reason`
    is the Confirm form's reason box.
    """

    title: str
    criteria: list[str]
    count: int
    selection: str
    count_text: str
    sample_title: str
    sample: list[SampleRow]
    action_href: str
    button: str
    button_class: str
    fields: list[tuple[str, str]]
    back_href: str
    can_confirm: bool
    reason: ReasonField
    error: str | None = None
    notice: str | None = None


def preview_href(action: Action, query: RunFilter) -> str:
    """The preview page of `action` for the runs matching `query`."""
    return f"/runs/{action}?{urlencode(filter_params(criteria(query)))}"


def bulk_links(query: RunFilter) -> BulkLinks | None:
    """The bulk actions the runs page offers for its filters; None without any criterion."""
    if not has_criteria(query):
        return None
    return BulkLinks(
        replay_href=preview_href("replay", query), cancel_href=preview_href("cancel", query)
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def done_notice(params: Mapping[str, str]) -> Notice | None:
    """What the runs page says after a bulk action redirected to it ("Replayed 3 runs.").

    Replays that flow control refused (a busy singleton, a rate limit) are counted apart:
    each is a SKIPPED run saying why.
    """
    for key, verb in (("replayed", "Replayed"), ("cancelled", "Cancelled")):
        count = params.get(key, "")
        if _whole_number(count):
            text = f"{verb} {_plural(int(count), 'run')}."
            skipped = params.get("skipped", "")
            if key == "replayed" and _whole_number(skipped) and int(skipped):
                text = (
                    f"{verb} {_plural(int(count), 'run')}: {skipped} of the new runs skipped by "
                    "flow control (a busy singleton, a limit); each says why."
                )
            since = params.get("replays_from")
            if key == "replayed" and since:
                href = models.runs_href(trigger_kind="replay", created_after=since)
                return Notice(text=text, href=href, link_text="See the new replays")
            return Notice(text=text)
    return None


def _done_href(
    action: Action, query: RunFilter, count: int, started: datetime, skipped: int = 0
) -> str:
    """The runs page with the same filters, saying what was done (and how many were skipped)."""
    params = filter_params(criteria(query))
    if action == "cancel":
        return models.runs_href(**params, cancelled=str(count))
    if skipped:
        params["skipped"] = str(skipped)
    return models.runs_href(**params, replayed=str(count), replays_from=moment_text(started))


def criteria_words(query: RunFilter) -> list[str]:
    """The filter in words, one criterion a line."""
    words = {
        "function_id": f"function {query.function_id}",
        "status": f"status {query.status}",
        "trigger_kind": f"trigger {query.trigger_kind}",
        "error_name": f"error class {query.error_name}",
        "event_id": f"started by event {query.event_id}",
        "q": f'event data contains "{query.q}"',
    }
    lines = [text for name, text in words.items() if getattr(query, name)]
    if query.run_ids is not None:
        lines.insert(0, f"{_plural(len(query.run_ids), 'run')} selected on the runs page")
    if query.dry_run is not None:
        lines.append("dry runs only" if query.dry_run else "real runs only (no dry runs)")
    if query.created_after is not None:
        lines.append(f"created at or after {models.moment(query.created_after).text}")
    if query.created_before is not None:
        lines.append(f"created before {models.moment(query.created_before).text}")
    return lines


def _sample_row(run: RunRecord, now: datetime) -> SampleRow:
    error = ""
    if run.error:
        found = models.error_view(run.error)
        error = f"{found.name}: {found.message}"
        if len(error) > ERROR_CHARS:
            error = error[: ERROR_CHARS - 1] + "…"
    return SampleRow(row=models.run_row(run, now), error=error)


def _count_text(action: Action, count: int) -> str:
    if action == "cancel":
        if not count:
            return "No active runs match: nothing to cancel."
        return f"{_plural(count, 'active run')} would be cancelled."
    if not count:
        return "No runs match: nothing to replay."
    return f"{_plural(count, 'run')} would be replayed, each as a new run linked to its original."


def preview(
    action: Action,
    query: RunFilter,
    count: int,
    sample: Sequence[RunRecord],
    now: datetime,
    *,
    selection: str = "",
    error: str | None = None,
    notice: str | None = None,
    reason: ReasonField | None = None,
) -> BulkPreview:
    """The preview page's model for `count` matching runs, `sample` the newest of them."""
    lines = criteria_words(query)
    if action == "cancel":
        lines.append("only active runs (queued or running) are cancelled")
    fields = [
        *filter_params(criteria(query)).items(),
        ("count", str(count)),
        ("selection", selection),
    ]
    shown = len(sample)
    return BulkPreview(
        title=_title(action, selected=query.run_ids is not None),
        criteria=lines,
        count=count,
        selection=selection,
        count_text=_count_text(action, count),
        sample_title=f"The newest {shown} of {count}" if shown < count else f"All {count}",
        sample=[_sample_row(run, now) for run in sample],
        action_href=f"/runs/{action}",
        button=f"{action.capitalize()} {_plural(count, 'run')}",
        button_class="danger" if action == "cancel" else "",
        fields=fields,
        back_href=models.runs_href(**filter_params(criteria(query))),
        can_confirm=count > 0 and error is None,
        reason=reason or ReasonField(hint=REASON_HINTS[action]),
        error=error,
        notice=notice,
    )


def _title(action: Action, *, selected: bool) -> str:
    runs = "selected" if selected else "matching"
    return f"Replay {runs} runs" if action == "replay" else f"Cancel {runs} active runs"


def selection_digest(run_ids: Sequence[str]) -> str:
    """A fingerprint of a set of run ids: equal for the same runs, in any order."""
    return hashlib.sha256("\n".join(sorted(run_ids)).encode()).hexdigest()[:32]


def _changed_notice(count: int, seen: int) -> str:
    """What the preview says when the runs matching are not those its Confirm form showed."""
    if count != seen:
        change = f"{_plural(count, 'run')} match now, not {seen}"
    else:
        change = f"other runs match now in place of some of those {seen}"
    return (
        f"The selection changed since the preview: {change}. "
        "Nothing was done; check them and confirm again."
    )


def _refusal(action: Action, exc: errors.SteplineError) -> tuple[int, str]:
    """A refused bulk action's status and the page's words for it."""
    status, message = public_error(exc)
    if isinstance(exc, errors.InvalidInput):
        message = f"this filter {exc.reason}"
    return status, f"Cannot {action} these runs: {message}."


class BulkActions:
    """The bulk preview pages and their Confirm posts, over one `Operations`.

    Args:
        operations: What the actions act on.
        guard: The dashboard's sign-in, forgery check and error pages around a handler.
        context: The dashboard's page context (title, navigation, sign-out).
    """

    def __init__(self, operations: Operations, *, guard: Guard, context: Context) -> None:
        self.ops = operations
        self.guard = guard
        self.context = context

    def _preview(self, action: Action, query: RunFilter) -> tuple[BulkPreview, int]:
        """The preview of `action` on the runs `query` selects, and the page's status."""
        now = self.ops.clock.now()
        if not has_criteria(query):
            error = (
                "Select runs or set at least one filter on the runs page first: "
                "a bulk action never applies to every run."
            )
            return preview(action, query, 0, [], now, error=error), 400
        active_only = action == "cancel"
        try:
            count, sample = self.ops.preview_matching(query, active_only=active_only)
        except (errors.InvalidInput, errors.NotFound, errors.Conflict) as exc:
            status, error = _refusal(action, exc)
            return preview(action, query, 0, [], now, error=error), status
        every = replace(query, before=None, limit=MAX_BULK_RUNS)
        selection = selection_digest(self.ops.store.list_run_ids(every, active_only=active_only))
        return preview(action, query, count, sample, now, selection=selection), 200

    def _act(self, action: Action, query: RunFilter, reason: str | None, by: str) -> int:
        if action == "cancel":
            return self.ops.cancel_matching(query, by=by, reason=reason)
        return self.ops.replay_matching(query, by=by, reason=reason)

    def _skipped_since(self, started: datetime) -> int:
        """How many replays created since `started` flow control refused (SKIPPED)."""
        skipped = RunFilter(
            trigger_kind="replay", status="SKIPPED", created_after=started, limit=MAX_BULK_RUNS
        )
        return len(self.ops.store.list_run_ids(skipped))

    def _page(self, request: Request, view: BulkPreview, status: int) -> Response:
        context = self.context(request, "runs", view.title, view=view)
        return page("runs_bulk.html", context, status=status)

    def preview_page(self, action: Action) -> Inner:
        """GET /runs/replay or /runs/cancel: the preview of the action for the filters."""

        async def inner(request: Request) -> Response:
            query = run_filter(request.query_params, self.ops.clock.now())
            view, status = await run_in_threadpool(self._preview, action, query)
            return self._page(request, view, status)

        async def handler(request: Request) -> Response:
            return await self.guard(request, inner)

        return handler

    def confirm(self, action: Action) -> Inner:
        """POST /runs/replay or /runs/cancel: act if the runs matching are those previewed."""

        async def inner(request: Request) -> Response:
            form = await read_form(request)
            query = run_filter(form, self.ops.clock.now())
            seen = _seen_count(form.get("count", ""))
            view, status = await run_in_threadpool(self._preview, action, query)
            reason = reason_field(form, REASON_HINTS[action])
            view = replace(view, reason=reason)
            if status == 200 and (view.count, view.selection) != (seen, form.get("selection")):
                notice = _changed_notice(view.count, seen)
                return self._page(request, replace(view, notice=notice), 409)
            if status != 200 or reason.error is not None:
                return self._page(request, view, status if status != 200 else 400)
            started = self.ops.clock.now()
            try:
                by = acting(request)
                done = await run_in_threadpool(self._act, action, query, reason.given, by)
            except (errors.InvalidInput, errors.NotFound, errors.Conflict) as exc:
                status, error = _refusal(action, exc)
                view = preview(action, query, 0, [], started, error=error)
                return self._page(request, view, status)
            skipped = (
                0 if action == "cancel" else await run_in_threadpool(self._skipped_since, started)
            )
            href = _done_href(action, query, done, started, skipped)
            return RedirectResponse(href, status_code=303)

        async def handler(request: Request) -> Response:
            return await self.guard(request, inner)

        return handler


def _whole_number(text: str) -> bool:
    """True for a count of runs written in ASCII digits (a bulk action's are small)."""
    return text.isascii() and text.isdigit() and len(text) <= len(str(MAX_BULK_RUNS))


def _seen_count(text: str) -> int:
    """The count the preview showed, as posted back by its Confirm form."""
    if not _whole_number(text):
        raise errors.InvalidInput("must be the number of runs the preview showed", "count")
    return int(text)
