"""The run page's Cancel and Replay.

Cancel is two steps: "Cancel run…" opens `GET /runs/{id}/cancel`, which says what cancelling
does and takes an optional reason; its button posts to the same path with `confirmed=true`. A
post without it (an old page, a script) cancels nothing and asks instead. The run records
that the dashboard asked, and the reason. Replay posts at once; a refusal (a paused function,
a busy `skip` singleton: 409) shows the run page again with the reason above it, linking the
run in the way, instead of an error page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline import errors
from stepline.engine.operations import Operations
from stepline.server import dashboard_models as models
from stepline.server.api import path_value
from stepline.server.dashboard_auth import acting
from stepline.server.dashboard_reasons import ReasonField, confirmed, reason_field
from stepline.server.forms import read_form
from stepline.server.templating import page
from stepline.store.base import RunRecord

Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request, Inner], Awaitable[Response]]
Context = Callable[..., dict[str, Any]]
RunPageContext = Callable[..., Awaitable[dict[str, Any]]]
REASON_HINT = "kept with the run and shown on its page"
WHAT_CANCEL_DOES = (
    "No new step starts; a sleeping or waiting run ends at once. A step executing now is "
    "stopped where it can be (an async step at its next await; a def step sees ctx.cancelled)."
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelConfirmation:
    """The question before cancelling a run, and its form (None once the run has ended)."""

    run_id: str
    function_id: str
    run_href: str
    question: str
    consequence: str
    action: str | None
    reason: ReasonField


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionError:
    """Why the run page's last action was refused, and the run in the way if one is."""

    message: str
    blocking_href: str | None = None
    blocking_run_id: str | None = None


def cancel_confirmation(run: RunRecord, reason: ReasonField | None = None) -> CancelConfirmation:
    """What the confirmation of cancelling `run` says."""
    href = models.run_href(run.id)
    if run.ended:
        question = f"Run {run.id} has ended ({run.status}): there is nothing to cancel."
        return CancelConfirmation(
            run_id=run.id,
            function_id=run.function_id,
            run_href=href,
            question=question,
            consequence="",
            action=None,
            reason=ReasonField(hint=REASON_HINT),
        )
    return CancelConfirmation(
        run_id=run.id,
        function_id=run.function_id,
        run_href=href,
        question=f"Cancel run {run.id} of {run.function_id}?",
        consequence=WHAT_CANCEL_DOES,
        action=f"{href}/cancel",
        reason=reason or ReasonField(hint=REASON_HINT),
    )


def action_error(exc: errors.SteplineError) -> ActionError:
    """The run page's words for a refused replay."""
    blocking = exc.run_id if isinstance(exc, errors.Conflict) else None
    return ActionError(
        message=f"Replay refused: {exc}",
        blocking_href=models.run_href(blocking) if blocking else None,
        blocking_run_id=blocking,
    )


class RunActions:
    """`/runs/{id}/cancel` (ask, then do) and `/runs/{id}/replay` over one `Operations`."""

    def __init__(
        self,
        operations: Operations,
        *,
        guard: Guard,
        context: Context,
        run_context: RunPageContext,
    ) -> None:
        self.ops = operations
        self._guard = guard
        self._context = context
        self._run_context = run_context

    def _ask(self, request: Request, ask: CancelConfirmation, status: int = 200) -> Response:
        context = self._context(request, "runs", ask.question, confirm=ask)
        return page("run_cancel.html", context, status=status)

    async def cancel_page(self, request: Request) -> Response:
        """GET /runs/{id}/cancel: what cancelling does, a reason box and the button."""

        async def inner(request: Request) -> Response:
            run = await run_in_threadpool(self.ops.store.get_run, path_value(request, "run_id"))
            return self._ask(request, cancel_confirmation(run))

        return await self._guard(request, inner)

    async def cancel(self, request: Request) -> Response:
        """POST /runs/{id}/cancel: cancel if confirmed (else ask); back to the run's page."""

        async def inner(request: Request) -> Response:
            run_id = path_value(request, "run_id")
            run = await run_in_threadpool(self.ops.store.get_run, run_id)  # NotFound → 404
            form = await read_form(request)
            reason = reason_field(form, REASON_HINT)
            if not confirmed(form) or reason.error is not None:
                status = 400 if reason.error is not None else 200
                return self._ask(request, cancel_confirmation(run, reason), status)
            await run_in_threadpool(
                lambda: self.ops.cancel(run_id, by=acting(request), reason=reason.given)
            )
            return RedirectResponse(models.run_href(run_id), status_code=303)

        return await self._guard(request, inner)

    async def replay(self, request: Request) -> Response:
        """POST /runs/{id}/replay: start a new run with the same trigger; go to it.

        A refusal shows the run page again, saying why above the run (409, 400).
        """

        async def inner(request: Request) -> Response:
            run_id = path_value(request, "run_id")
            await run_in_threadpool(self.ops.store.get_run, run_id)  # NotFound → 404
            form = await read_form(request)
            try:
                new_id = await run_in_threadpool(
                    lambda: self.ops.replay(run_id, by=acting(request), reason=form.get("reason"))
                )
            except (errors.Conflict, errors.InvalidInput) as exc:
                context = await self._run_context(request, run_id)
                context["action_error"] = action_error(exc)
                status = 409 if isinstance(exc, errors.Conflict) else 400
                return page("run.html", context, status=status)
            return RedirectResponse(models.run_href(new_id), status_code=303)

        return await self._guard(request, inner)
