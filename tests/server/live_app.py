"""The app a real `stepline dev` serves in the live-state browser tests: one run that sleeps."""

from __future__ import annotations

import stepline
from stepline.sdk.step import Step

app = stepline.App("live-state-tests")


@app.function(id="napper", retries=0)
def napper(ctx: stepline.Context[Step]) -> str:
    """Sleep for the seconds in the event's data (a real sleep: `stepline dev` has a real clock)."""
    ctx.step.sleep("nap", f"{ctx.event['data'].get('seconds', 3)}s")
    return "rested"
