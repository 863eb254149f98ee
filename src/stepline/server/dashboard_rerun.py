"""The run page's reruns: "Rerun from here" on a step and the "Replay with edited payload" editor.

Both post to `/runs/{id}/rerun` (`Operations.rerun`, as the API's rerun): `from_step` (blank:
from the start), and from the editor the event data as typed, the dry-run box and a reason
(kept with the new run). Data left as
it was is not counted as edited. A refused rerun (bad JSON, a paused function) shows the run
page again with the editor open, the text kept and the reason beside it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline import errors
from stepline.engine.operations import Operations, RunDetail
from stepline.server import dashboard_models as models
from stepline.server.dashboard_auth import acting
from stepline.server.forms import parse_payload, read_form
from stepline.server.templating import page
from stepline.store.base import EventRecord, RunRecord

Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request, Inner], Awaitable[Response]]
RunPageContext = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True, kw_only=True, slots=True)
class RerunEditor:
    """The "Replay with edited payload" form of one run.

    `payload` is the text in the box (the event's data, pretty); `steps` the ids it may start
    from (`""` is the start); `editable` is false for a run of several events (a batch),
    whose data cannot be edited; `error` says why the last post was refused.
    """

    action: str
    payload: str
    steps: list[str]
    from_step: str
    dry_run: bool
    editable: bool
    reason: str = ""
    error: str | None = None
    open: bool = False


def rerun_editor(detail: RunDetail, events: Sequence[EventRecord]) -> RerunEditor | None:
    """The editor for a run and its events; None for a parallel branch (its run is rerun)."""
    run = detail.run
    if run.trigger_kind == "parallel":
        return None
    data = json.loads(events[0].data) if len(events) == 1 else None
    return RerunEditor(
        action=f"{models.run_href(run.id)}/rerun",
        payload=json.dumps(data, indent=2, ensure_ascii=False) if data is not None else "",
        steps=[step.id for step in detail.steps if step.kind != "branch"],
        from_step="",
        dry_run=run.dry_run,
        editable=data is not None,
    )


class Reruns:
    """`POST /runs/{id}/rerun`: start the rerun and go to it, or show why not."""

    def __init__(self, operations: Operations, *, guard: Guard, run_context: RunPageContext):
        self.ops = operations
        self._guard = guard
        self._run_context = run_context

    async def rerun(self, request: Request) -> Response:
        """Start a rerun from the posted step, with the posted data if it was edited."""

        async def inner(request: Request) -> Response:
            run_id = request.path_params["run_id"]
            original = await run_in_threadpool(self.ops.store.get_run, run_id)  # NotFound → 404
            form = await read_form(request)
            from_step = form.get("from_step") or None
            try:
                data = await run_in_threadpool(self._edited_data, original, form.get("payload"))
                new_id = await run_in_threadpool(
                    lambda: self.ops.rerun(
                        run_id,
                        from_step=from_step,
                        data=data,
                        dry_run=_dry_run(form),
                        reason=form.get("reason"),
                        by=acting(request),
                    )
                )
            except (errors.InvalidInput, errors.PayloadTooLarge, errors.Conflict) as exc:
                return await self._refused(request, run_id, form, exc)
            return RedirectResponse(models.run_href(new_id), status_code=303)

        return await self._guard(request, inner)

    def _edited_data(self, original: RunRecord, payload: str | None) -> dict[str, Any] | None:
        """The posted data, or None when none was posted or it is the original's unchanged."""
        if payload is None:
            return None
        data = parse_payload(payload, "payload")
        events = self.ops.store.get_events(original.event_ids)
        if len(events) == 1 and json.loads(events[0].data) == data:
            return None
        return data

    async def _refused(
        self, request: Request, run_id: str, form: dict[str, str], exc: errors.SteplineError
    ) -> Response:
        context = await self._run_context(request, run_id)
        editor: RerunEditor | None = context["rerun"]
        if editor is not None:
            context["rerun"] = RerunEditor(
                action=editor.action,
                payload=form.get("payload", editor.payload),
                steps=editor.steps,
                from_step=form.get("from_step", ""),
                dry_run=editor.dry_run if _dry_run(form) is None else bool(_dry_run(form)),
                editable=editor.editable,
                reason=form.get("reason", ""),
                error=str(exc),
                open=True,
            )
        status = 409 if isinstance(exc, errors.Conflict) else 400
        return page("run.html", context, status=status)


def _dry_run(form: dict[str, str]) -> bool | None:
    """The editor's box (a hidden "false" precedes it); None from a step's button."""
    value = form.get("dry_run")
    return None if value is None else value == "true"
