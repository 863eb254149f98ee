"""The dashboard: server-rendered pages over `Operations`, with live updates over SSE.

Every page is complete HTML that works without JavaScript, and every form is a plain POST
answered with a 303 redirect (or the same page with the error, status 400). htmx and its SSE
extension only add live updates: the runs list and the run page subscribe to `/…/stream` and
swap in the sections the server sends when the store changed. Sign-in and forgery checks are
in `dashboard_auth`; view models in `dashboard_models`; the runs list in `dashboard_runs`, its
filters in `dashboard_filters`; bulk replay and cancel in `dashboard_bulk`; the function page
(with pause and resume) in `dashboard_functions`; workers in `dashboard_workers`; the events
list in `dashboard_events`; templates hold no logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from stepline import errors
from stepline.engine import apps, views
from stepline.engine.access import Role
from stepline.engine.downloads import OutputFile, output_file
from stepline.engine.inngest.sync import SyncFailed, syncer_for
from stepline.engine.operations import Operations
from stepline.server import dashboard_apps, dashboard_runs, sse
from stepline.server import dashboard_models as models
from stepline.server.api import path_value
from stepline.server.api_outputs import download
from stepline.server.auth import COOKIE, AuthSettings, forbidden, principal_of, remember
from stepline.server.dashboard_audit import AuditPages
from stepline.server.dashboard_auth import DashboardAuth, acting, login_redirect
from stepline.server.dashboard_bulk import BulkActions, done_notice
from stepline.server.dashboard_events import EventPages
from stepline.server.dashboard_filters import runs_filters
from stepline.server.dashboard_functions import FunctionPages, RunNow, with_real_ticks
from stepline.server.dashboard_rerun import Reruns, rerun_editor
from stepline.server.dashboard_run_actions import RunActions
from stepline.server.dashboard_runs import SELECTABLE, run_rows
from stepline.server.dashboard_trace import build_trace
from stepline.server.dashboard_workers import WorkerPages
from stepline.server.errors import public_error, retry_headers
from stepline.server.forms import read_form
from stepline.server.models import SyncAppBody, parse
from stepline.server.templating import page, render

RUN_SECTIONS = {
    "summary": "_run_summary.html",
    "progress": "_run_progress.html",
    "outcome": "_run_outcome.html",
    "steps": "_run_steps.html",
    "logs": "_run_logs.html",
}
Inner = Callable[[Request], Awaitable[Response]]
NEEDED = "stepline_role"  # the request scope's key for the role a route needs


class Dashboard:
    """The dashboard's handlers over one `Operations`."""

    def __init__(self, operations: Operations, auth: AuthSettings) -> None:
        self.ops = operations
        self.auth = DashboardAuth(auth, operations.audit)
        self.syncer = syncer_for(operations, auth.signing_keys)
        self.bulk = BulkActions(operations, guard=self._guard, context=self._context)
        self.reruns = Reruns(operations, guard=self._guard, run_context=self._run_context)
        self.run_actions = RunActions(
            operations, guard=self._guard, context=self._context, run_context=self._run_context
        )
        self.functions = FunctionPages(operations, guard=self._guard, context=self._context)
        self.workers = WorkerPages(operations, guard=self._guard, context=self._context)
        self.events = EventPages(operations, guard=self._guard, context=self._context)
        self.audit = AuditPages(operations, guard=self._guard, context=self._context)

    # -- plumbing ----------------------------------------------------------------------------

    def needs(self, role: Role, handler: Inner) -> Inner:
        """`handler`, for a signed-in token with `role` at least (checked by `_guard`)."""

        async def endpoint(request: Request) -> Response:
            request.scope[NEEDED] = role
            return await handler(request)

        return endpoint

    def _context(self, request: Request, nav: str, title: str, **values: Any) -> dict[str, Any]:
        signed_in_by_cookie = self.auth.required and COOKIE in request.cookies
        principal = principal_of(request)
        return {
            "title": title,
            "nav": nav,
            "signed_in": signed_in_by_cookie,
            "can_operate": principal is not None and principal.may("operate"),
            "is_admin": principal is not None and principal.may("admin"),
            "server_now": models.moment(self.ops.clock.now()).iso,  # "ago" counts from it
            **values,
        }

    async def _guard(self, request: Request, inner: Inner, *, stream: bool = False) -> Response:
        """Sign-in, the route's role (`needs`), forgery check for posts, errors as HTML pages."""
        try:
            principal = await run_in_threadpool(self.auth.who, request)
            if principal is None:
                if stream or request.method != "GET":
                    return PlainTextResponse("sign in first", status_code=401)
                return login_redirect(request)
            remember(request, principal)
            needed: Role = request.scope.get(NEEDED, "admin")
            if not principal.may(needed):
                raise forbidden(principal, needed)
            if request.method == "POST" and self.auth.forged(request):
                message = "This form was posted from another site; refused."
                return self._error(request, 403, message)
            return await inner(request)
        except errors.SteplineError as exc:
            status, message = public_error(exc)
            if stream:
                return PlainTextResponse(message, status_code=status, headers=retry_headers(exc))
            return self._error(request, status, message, retry_headers(exc))

    def _error(
        self, request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        context = self._context(request, "", f"Error {status}", status=status, message=message)
        return page("error.html", context, status=status, headers=headers)

    # -- functions ---------------------------------------------------------------------------

    def _cards(self, failed: tuple[str, str, str] | None = None) -> list[models.FunctionCard]:
        now = self.ops.clock.now()
        stats, cron = self.ops.function_stats(), self.ops.cron_states()
        sdks = {
            a.id: dashboard_apps.sdk_name(a.sdk)
            for a in self.ops.store.list_apps()
            if a.kind == "sdk"
        }
        cards = []
        for fn in sorted(self.ops.list_functions(), key=lambda f: f.id):
            states = cron.get(fn.id)
            sdk = sdks.get(fn.app_id)
            if failed is not None and failed[0] == fn.id:
                card = models.function_card(
                    fn,
                    stats.get(fn.id),
                    now,
                    cron=states,
                    payload=failed[1],
                    error=failed[2],
                    sdk=sdk,
                    retention=self.ops.retention,
                )
            else:
                card = models.function_card(
                    fn, stats.get(fn.id), now, cron=states, sdk=sdk, retention=self.ops.retention
                )
            cards.append(with_real_ticks(card, fn, states or {}))
        return cards

    def _worker_notices(self) -> list[str]:
        """A line for each live worker with slots held by abandoned steps."""
        found = [views.worker_view(w) for w in self.ops.store.list_workers()]
        return [
            f"Worker {w['id']}: {views.abandoned_text(w['abandoned'])}"
            for w in found
            if w["alive"] and w["abandoned"]
        ]

    async def functions_page(self, request: Request) -> Response:
        """GET / and /functions: every function, its triggers, last run and "Run now"."""

        async def inner(request: Request) -> Response:
            cards = await run_in_threadpool(self._cards)
            notices = await run_in_threadpool(self._worker_notices)
            context = self._context(
                request, "functions", "Functions", functions=cards, worker_notices=notices
            )
            return page("functions.html", context)

        return await self._guard(request, inner)

    async def invoke(self, request: Request) -> Response:
        """POST /functions/{id}/invoke: start a run with the posted payload; go to it."""

        async def inner(request: Request) -> Response:
            function_id = path_value(request, "function_id")
            await run_in_threadpool(self.ops.function, function_id)  # NotFound → 404
            form = await RunNow.read(request)
            try:
                run_id = await form.start(self.ops, function_id)
            except (errors.InvalidInput, errors.Conflict) as exc:
                status = 409 if isinstance(exc, errors.Conflict) else 400
                cards = await run_in_threadpool(self._cards, (function_id, form.payload, str(exc)))
                context = self._context(request, "functions", "Functions", functions=cards)
                return page("functions.html", context, status=status)
            return RedirectResponse(models.run_href(run_id), status_code=303)

        return await self._guard(request, inner)

    # -- apps --------------------------------------------------------------------------------

    def _apps_page(
        self, request: Request, form: dashboard_apps.SyncForm, status: int = 200
    ) -> Response:
        cards = dashboard_apps.app_cards(
            self.ops.store.list_apps(), apps.functions_by_app(self.ops.store)
        )
        notice = None
        if form.error is None:
            notice = dashboard_apps.synced_notice(request.query_params.get("synced"), cards)
        context = self._context(request, "apps", "Apps", apps=cards, form=form, notice=notice)
        return page("apps.html", context, status=status)

    async def apps_page(self, request: Request) -> Response:
        """GET /apps: every app, its SDK, URL, last sync and functions; "Sync an app"."""

        async def inner(request: Request) -> Response:
            form = dashboard_apps.SyncForm(action=dashboard_apps.SYNC_ACTION, value="", error=None)
            return await run_in_threadpool(self._apps_page, request, form)

        return await self._guard(request, inner)

    async def sync_app(self, request: Request) -> Response:
        """POST /apps: sync the SDK app at the posted `url`; back to Apps, saying so."""

        async def inner(request: Request) -> Response:
            url = (await read_form(request)).get("url", "")
            try:
                body = parse(SyncAppBody, {"url": url}, where="body")
                app = await apps.sync_by_url(self.syncer, self.ops.store, body.url)
                by = acting(request)
                await run_in_threadpool(
                    lambda: self.ops.audit.record("app.sync", actor=by, target=body.url)
                )
            except (errors.InvalidInput, SyncFailed) as exc:
                status = 400 if isinstance(exc, errors.InvalidInput) else 502
                form = dashboard_apps.SyncForm(
                    action=dashboard_apps.SYNC_ACTION, value=url, error=str(exc)
                )
                return await run_in_threadpool(self._apps_page, request, form, status)
            return RedirectResponse(dashboard_apps.synced_href(app.id), status_code=303)

        return await self._guard(request, inner)

    # -- runs --------------------------------------------------------------------------------

    async def runs_page(self, request: Request) -> Response:
        """GET /runs: runs newest first, filtered, keyset-paged with `before`."""

        async def inner(request: Request) -> Response:
            now = self.ops.clock.now()
            filters = runs_filters(request.query_params, now)
            values = await run_in_threadpool(dashboard_runs.runs_page, self.ops, filters, now)
            notice = done_notice(request.query_params)
            context = self._context(request, "runs", "Runs", notice=notice, **values)
            context["selectable"] = context["selectable"] and context["can_operate"]
            return page("runs.html", context)

        return await self._guard(request, inner)

    async def runs_stream(self, request: Request) -> Response:
        """GET /runs/stream: SSE `runs` events with fresh table rows when the list changes.

        A relative range (`since`) moves with the clock; `select` asks for the runs page's
        rows, with a checkbox each.
        """

        async def inner(request: Request) -> Response:
            filters = runs_filters(request.query_params, self.ops.clock.now())
            if filters.given.before is not None:  # an unknown cursor → 404, not a broken stream
                await run_in_threadpool(self.ops.list_runs, filters.given)
            principal = principal_of(request)
            operator = principal is not None and principal.may("operate")
            selectable = SELECTABLE in request.query_params and operator

            def poll() -> sse.Snapshot:
                now = self.ops.clock.now()
                runs = self.ops.list_runs(filters.at(now))
                rows = run_rows(self.ops.store, runs, now)
                return sse.Snapshot(
                    # Not the rows: an active run's duration would resend them every poll.
                    key=repr((runs, [row.steps for row in rows])),
                    render=lambda: {
                        "runs": render("_runs_rows.html", {"rows": rows, "selectable": selectable})
                    },
                )

            return sse.stream(poll, subject=("runs", request.url.query, selectable, principal))

        return await self._guard(request, inner, stream=True)

    def _run_models(self, run_id: str) -> dict[str, Any]:
        """The run page's models: the page, its trace and its rerun editor."""
        detail, now = self.ops.run_detail(run_id), self.ops.clock.now()
        events = self.ops.store.get_events(detail.run.event_ids)
        return {
            "run": models.run_page(detail, now),
            "trace": build_trace(detail, now),
            "event": models.trigger_event(events),
            "rerun": rerun_editor(detail, events),
        }

    async def _run_context(self, request: Request, run_id: str) -> dict[str, Any]:
        found = await run_in_threadpool(self._run_models, run_id)
        if found["rerun"] is not None and "rerun" in request.query_params:  # "Rerun with edits…"
            found["rerun"] = replace(found["rerun"], open=True)
        return self._context(request, "runs", f"Run {found['run'].id}", **found)

    async def run_page(self, request: Request) -> Response:
        """GET /runs/{id}: one run, live while it is active."""

        async def inner(request: Request) -> Response:
            context = await self._run_context(request, path_value(request, "run_id"))
            return page("run.html", context)

        return await self._guard(request, inner)

    async def run_stream(self, request: Request) -> Response:
        """GET /runs/{id}/stream: SSE section updates until the run ends, then `end`."""

        async def inner(request: Request) -> Response:
            run_id = path_value(request, "run_id")
            await run_in_threadpool(self.ops.store.get_run, run_id)  # NotFound → 404
            principal = principal_of(request)
            operator = principal is not None and principal.may("operate")

            def poll() -> sse.Snapshot:
                detail, now = self.ops.run_detail(run_id), self.ops.clock.now()
                page = {
                    "run": models.run_page(detail, now),
                    "trace": build_trace(detail, now),
                    "can_operate": operator,
                }
                return sse.Snapshot(
                    key=repr(detail),
                    render=lambda: {
                        name: render(template, page) for name, template in RUN_SECTIONS.items()
                    },
                    final=detail.run.ended,
                )

            return sse.stream(poll, subject=("run", run_id, operator))

        return await self._guard(request, inner, stream=True)

    async def output(self, request: Request) -> Response:
        """GET /runs/{id}/output and /runs/{id}/steps/{hash}/output: the output as a file.

        The same file as the API's download routes serve (`server.api_outputs`), for the
        dashboard's sign-in; a large output's page links here.
        """

        async def inner(request: Request) -> Response:
            run_id = path_value(request, "run_id")
            step_hash = (
                path_value(request, "step_hash") if "step_hash" in request.path_params else None
            )

            def find() -> OutputFile:
                return output_file(self.ops.store, self.ops.store.get_run(run_id), step_hash)

            return download(await run_in_threadpool(find))

        return await self._guard(request, inner)

    # -- events ------------------------------------------------------------------------------

    def _event_model(self, event_id: str) -> models.EventPage:
        event, now = self.ops.get_event(event_id), self.ops.clock.now()
        runs = self.ops.runs_for_event(event.internal_id)
        return replace(
            models.event_page(event, runs, now), runs=run_rows(self.ops.store, runs, now)
        )

    async def event_page(self, request: Request) -> Response:
        """GET /events/{id}: one event, its payload and the runs it started (live)."""

        async def inner(request: Request) -> Response:
            event = await run_in_threadpool(self._event_model, path_value(request, "event_id"))
            stream_url = "/runs/stream?" + urlencode({"event_id": event.row.internal_id})
            context = self._context(
                request, "events", f"Event {event.row.name}", event=event, stream_url=stream_url
            )
            return page("event.html", context)

        return await self._guard(request, inner)
