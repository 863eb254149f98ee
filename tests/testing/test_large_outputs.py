"""`stepline.testing` with outputs over the inline limit: the test sees the values themselves."""

from __future__ import annotations

from typing import Any

import stepline
from stepline.engine.outputs import DEFAULT_INLINE_BYTES
from stepline.sdk.step import Step
from stepline.testing import run_function

app = stepline.App("kit-large-outputs")
ROWS = [f"row-{n:05d}-" + "x" * 88 for n in range(4000)]  # about 400 KiB of JSON


@app.function(id="export", triggers=[stepline.event("kit/export")])
def export(ctx: stepline.Context[Step]) -> dict[str, Any]:
    rows = ctx.step.run("read-rows", lambda: ROWS)
    ctx.step.sleep("settle", "1m")  # the replay after it reads the stored rows back
    ids = ctx.step.send_event(
        "announce", [{"name": "kit/exported", "data": {"n": n}} for n in range(3)]
    )
    return {"rows": rows, "sent": len(ids)}


def test_run_function_sees_large_step_outputs_and_results_as_values() -> None:
    assert len(str(ROWS)) > DEFAULT_INLINE_BYTES  # each is kept as a blob
    result = run_function(export, event={"name": "kit/export"})
    assert result.status == "COMPLETED", result.error
    assert result.steps["read-rows"].output == ROWS
    assert result.output == {"rows": ROWS, "sent": 3}
    assert [event["data"] for event in result.sent_events] == [{"n": 0}, {"n": 1}, {"n": 2}]
