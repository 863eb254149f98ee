"""The function page: config, real cron ticks, recent runs, a chart, Run now, pause, resume.

Pause and resume are two steps: `GET /functions/{id}/pause` (or `resume`) asks, saying what
it will do (a pause takes an optional reason, kept with the function until it is resumed), and
its Confirm button posts to the same path with `confirmed=true`; a post without it only asks.
The page's Run now posts to `/functions/{id}/run`, which shows a refusal on this page (the
Functions page's cards post to `/invoke` and show theirs there).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline import errors
from stepline.engine.operations import Operations
from stepline.sdk.triggers import CronTrigger
from stepline.server import dashboard_apps
from stepline.server import dashboard_models as models
from stepline.server.api import path_value
from stepline.server.dashboard_auth import acting
from stepline.server.dashboard_chart import Chart, hourly_chart, window_start
from stepline.server.dashboard_reasons import ReasonField, confirmed, reason_field
from stepline.server.dashboard_runs import run_rows
from stepline.server.forms import parse_payload, read_form
from stepline.server.templating import page
from stepline.store.base import CronState, FunctionRecord, RunFilter

Toggle = Literal["pause", "resume"]
Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request, Inner], Awaitable[Response]]
Context = Callable[..., dict[str, Any]]
RECENT_RUNS = 20
CONSEQUENCES = {
    "pause": "Its events and cron ticks will start no runs until it is resumed; "
    "runs already started go on.",
    "resume": "Its events and cron ticks will start runs again.",
}
PAUSE_REASON_HINT = "kept with the function until it is resumed"


@dataclass(frozen=True, kw_only=True, slots=True)
class RunNow:
    """A posted Run now form: the payload as typed and the dry-run box."""

    payload: str
    dry_run: bool
    by: str

    @classmethod
    async def read(cls, request: Request) -> RunNow:
        """The form of `request` (a URL-encoded post), and who posted it."""
        form = await read_form(request)
        return cls(
            payload=form.get("payload", ""),
            dry_run=form.get("dry_run") == "true",
            by=acting(request),
        )

    async def start(self, ops: Operations, function_id: str) -> str:
        """Start the run; raises `InvalidInput` (the payload) or `Conflict` (paused, busy)."""
        data = parse_payload(self.payload, "payload")
        return await run_in_threadpool(
            lambda: ops.invoke(function_id, data, by=self.by, dry_run=self.dry_run)
        )


def real_last_tick(cron: CronTrigger, state: CronState) -> datetime | None:
    """The schedule's last tick; None while it has had none.

    A scheduler seeing a schedule for the first time records the moment as its last tick (to
    never run the past); that moment is off the schedule, and is no tick.
    """
    tick = state.last_tick
    return tick if cron.next_after(tick - timedelta(seconds=1)) == tick else None


def attempts_text(retries: int) -> str:
    """Retries in words, with the attempts they make: "4 retries (up to 5 attempts)"."""
    if retries == 0:
        return "no retries (1 attempt)"
    return f"{retries} retr{'y' if retries == 1 else 'ies'} (up to {retries + 1} attempts)"


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionPage:
    """The function page: its card's facts and forms, recent runs and the chart."""

    card: models.FunctionCard
    attempts: str
    runs: list[models.RunRow]
    stream_url: str
    chart: Chart
    toggle_href: str
    toggle_label: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Confirmation:
    """The question before a pause or resume, and the form that does it (a pause's reason)."""

    function_id: str
    question: str
    consequence: str
    action: str
    button: str
    back_href: str
    reason: ReasonField | None


def with_real_ticks(
    card: models.FunctionCard, fn: FunctionRecord, states: Mapping[str, CronState]
) -> models.FunctionCard:
    """The card with each cron trigger's last tick a real one (see `real_last_tick`)."""
    views = []
    for raw, view in zip(json.loads(fn.config).get("triggers", []), card.triggers, strict=True):
        if "cron" in raw and view.last_fire is not None:
            cron = CronTrigger(expression=raw["cron"], tz=raw["tz"], missed=raw["missed"])
            tick = real_last_tick(cron, states[cron.schedule])
            view = replace(view, last_fire=models.maybe_moment(tick))
        views.append(view)
    return replace(card, triggers=views)


def confirmation(
    fn: FunctionRecord, action: Toggle, reason: ReasonField | None = None
) -> Confirmation:
    """What the confirmation of a pause or resume of `fn` says."""
    verb = action.capitalize()
    if action == "pause" and reason is None:
        reason = ReasonField(hint=PAUSE_REASON_HINT)
    return Confirmation(
        function_id=fn.id,
        question=f"{verb} function {fn.id}?",
        consequence=CONSEQUENCES[action],
        action=f"{models.function_page_href(fn.id)}/{action}",
        button=f"{verb} {fn.id}",
        back_href=models.function_page_href(fn.id),
        reason=reason if action == "pause" else None,
    )


class FunctionPages:
    """The function page's handlers over one `Operations`."""

    def __init__(self, operations: Operations, *, guard: Guard, context: Context) -> None:
        self.ops = operations
        self._guard = guard
        self._context = context

    def _model(
        self, function_id: str, payload: str = "{}", error: str | None = None
    ) -> FunctionPage:
        fn = self.ops.function(function_id)  # NotFound → 404
        now = self.ops.clock.now()
        states = self.ops.cron_states().get(fn.id, {})
        app = next((a for a in self.ops.store.list_apps() if a.id == fn.app_id), None)
        sdk = dashboard_apps.sdk_name(app.sdk) if app is not None and app.kind == "sdk" else None
        stats = self.ops.function_stats().get(fn.id)
        card = models.function_card(
            fn,
            stats,
            now,
            cron=states,
            payload=payload,
            error=error,
            sdk=sdk,
            retention=self.ops.retention,
        )
        href = models.function_page_href(fn.id)
        card = replace(
            with_real_ticks(card, fn, states),
            form=replace(card.form, action=f"{href}/run", field_id="payload"),
        )
        runs = self.ops.list_runs(RunFilter(function_id=fn.id, limit=RECENT_RUNS))
        timings = self.ops.store.function_timings(fn.id, window_start(now))
        return FunctionPage(
            card=card,
            attempts=attempts_text(card.retries),
            runs=run_rows(self.ops.store, runs, now),
            stream_url="/runs/stream?"
            + urlencode({"function_id": fn.id, "limit": str(RECENT_RUNS)}),
            chart=hourly_chart(timings, now),
            toggle_href=f"{href}/{'resume' if fn.paused else 'pause'}",
            toggle_label="Resume…" if fn.paused else "Pause…",
        )

    def _render(self, request: Request, model: FunctionPage, status: int = 200) -> Response:
        context = self._context(request, "functions", f"Function {model.card.id}", fn=model)
        return page("function.html", context, status=status)

    async def page(self, request: Request) -> Response:
        """GET /functions/{id}: the function page."""

        async def inner(request: Request) -> Response:
            model = await run_in_threadpool(self._model, path_value(request, "function_id"))
            return self._render(request, model)

        return await self._guard(request, inner)

    async def run(self, request: Request) -> Response:
        """POST /functions/{id}/run: start a run with the posted payload; go to it."""

        async def inner(request: Request) -> Response:
            function_id = path_value(request, "function_id")
            await run_in_threadpool(self.ops.function, function_id)  # NotFound → 404
            form = await RunNow.read(request)
            try:
                run_id = await form.start(self.ops, function_id)
            except (errors.InvalidInput, errors.Conflict) as exc:
                status = 409 if isinstance(exc, errors.Conflict) else 400
                model = await run_in_threadpool(self._model, function_id, form.payload, str(exc))
                return self._render(request, model, status)
            return RedirectResponse(models.run_href(run_id), status_code=303)

        return await self._guard(request, inner)

    def _ask(self, request: Request, ask: Confirmation, status: int = 200) -> Response:
        context = self._context(request, "functions", ask.question, confirm=ask)
        return page("function_confirm.html", context, status=status)

    def confirm_page(self, action: Toggle) -> Inner:
        """GET /functions/{id}/pause|resume: ask first, saying what it will do."""

        async def handler(request: Request) -> Response:
            async def inner(request: Request) -> Response:
                fn = await run_in_threadpool(self.ops.function, path_value(request, "function_id"))
                return self._ask(request, confirmation(fn, action))

            return await self._guard(request, inner)

        return handler

    def toggle(self, action: Toggle) -> Inner:
        """POST /functions/{id}/pause|resume: if confirmed, do it (else ask); back to its page."""

        async def handler(request: Request) -> Response:
            async def inner(request: Request) -> Response:
                fn = await run_in_threadpool(self.ops.function, path_value(request, "function_id"))
                form = await read_form(request)
                reason = reason_field(form, PAUSE_REASON_HINT) if action == "pause" else None
                refused = reason is not None and reason.error is not None
                if not confirmed(form) or refused:
                    return self._ask(
                        request, confirmation(fn, action, reason), 400 if refused else 200
                    )
                by = acting(request)
                if reason is not None:
                    given = reason.given
                    await run_in_threadpool(lambda: self.ops.pause(fn.id, by=by, reason=given))
                else:
                    await run_in_threadpool(lambda: self.ops.resume(fn.id, by=by))
                return RedirectResponse(models.function_page_href(fn.id), status_code=303)

            return await self._guard(request, inner)

        return handler
