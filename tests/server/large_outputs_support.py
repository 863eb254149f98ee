"""An app whose run has a step output and a result over 1 MiB, served with a 1 KiB inline limit
(so both are blobs: several 1 MiB chunks on PostgreSQL), for the API, dashboard and CLI tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import stepline
from stepline.engine.engine import Engine
from stepline.engine.outputs import OutputLimits
from stepline.sdk.step import Step, hash_step_id
from stepline.store.base import RunRecord
from stepline.store.blobs import BlobRef, blob_ref
from tests.conftest import FAST_SETTINGS

ROWS = 12_000  # of about 100 bytes each: about 1.2 MiB of JSON
SMALL_LIMITS = replace(
    FAST_SETTINGS, outputs=OutputLimits(inline_bytes=1024, max_bytes=4 * 1024 * 1024)
)


def make_rows() -> list[str]:
    """The large step output: ROWS distinct strings."""
    return [f"row-{n:05d}-" + "x" * 88 for n in range(ROWS)]


def large_outputs_app() -> stepline.App:
    """ "report" (a large step, a small step, a large result), "other", and "fails"."""
    app = stepline.App("large-outputs")

    @app.function(id="report", triggers=[stepline.event("big/report")], retries=0)
    def report(ctx: stepline.Context[Step]) -> dict[str, Any]:
        rows = ctx.step.run("make-rows", make_rows)
        note = ctx.step.run("note", lambda: {"rows": len(rows)})
        return {"note": note, "rows": rows}

    @app.function(id="other", triggers=[stepline.event("big/other")], retries=0)
    def other(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("small", lambda: "ok")

    @app.function(id="fails", triggers=[stepline.event("big/fails")], retries=0)
    def fails(ctx: stepline.Context[Step]) -> None:
        raise RuntimeError("no output here")

    return app


@dataclass(frozen=True)
class Finished:
    """A finished run of "report": its record, and the blobs of its result and large step."""

    run: RunRecord
    result: BlobRef
    step: BlobRef

    @property
    def step_hash(self) -> str:
        """The hash of the large step, "make-rows"."""
        return hash_step_id("make-rows")


def finished(engine: Engine, function_id: str = "report") -> RunRecord:
    """Invoke a function and wait for its run to end."""
    run_id = engine.operations.invoke(function_id, {}, by="test")
    return engine.wait_for_run(run_id, 20)


def finished_report(engine: Engine) -> Finished:
    """A finished run of "report", whose result and step "make-rows" are blobs."""
    run = finished(engine)
    assert run.status == "COMPLETED", run.error
    [step] = [s for s in engine.store.get_steps(run.id) if s.id == "make-rows"]
    result, made = blob_ref(run.output), blob_ref(step.output)
    assert result is not None and made is not None
    return Finished(run=run, result=result, step=made)
