"""An app for the tests of guarded actions: "hold" sleeps an hour holding a `skip` singleton per
`event.data.key`, so its runs stay active to be cancelled and a replay of one is refused (409)."""

from __future__ import annotations

import stepline
from stepline.engine.engine import Engine
from tests.engine.support import parked, start

EVENT = "hold/go"
LONG_REASON = "x" * 501


def holding_app() -> stepline.App:
    app = stepline.App("holding")

    @app.function(
        id="hold",
        triggers=[stepline.event(EVENT)],
        singleton=stepline.Singleton(key="event.data.key", mode="skip"),
    )
    def hold(ctx: stepline.Context) -> str:
        ctx.step.sleep("nap", "1h")
        return "woke"

    return app


def sleeping_run(engine: Engine, key: str = "a") -> str:
    """A run of "hold" sleeping (active, holding the singleton `key`)."""
    run_id = start(engine, EVENT, {"key": key})
    parked(engine, run_id, "SLEEPING")
    return run_id
