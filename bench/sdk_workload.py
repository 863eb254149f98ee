"""The sdk part's Python SDK app: W1's function on the official `inngest` PyPI SDK.

    INNGEST_DEV=<Stepline URL> python bench/sdk_workload.py --port N

One process: FastAPI under uvicorn on 127.0.0.1:N, `inngest.fast_api.serve` at /api/inngest
(a `def` function, so the SDK runs it in the event loop's thread pool), configured as a user
configures an app. The function is W1's body on the SDK: three `ctx.step.run` calls of a no-op
returning `{"run", "step", "t"}` (`t` = when the step ran, read by W2). GET /bench/stats
reports the calls served at /api/inngest and the wall time spent in them, measured by an ASGI
middleware around the whole app (FastAPI, the SDK, the thread pool hop), so that the round
trip seen by the engine splits into the app's time and the rest.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

with warnings.catch_warnings():  # the SDK imports pydantic APIs deprecated in pydantic 2
    warnings.simplefilter("ignore")
    import fastapi
    import inngest
    import inngest.fast_api

APP_ID = "bench-py"
FN_ID = "w1-three-steps"
SERVE_PATH = "/api/inngest"


def noop(run: int, step: int) -> dict[str, Any]:
    """The step body: no I/O, a small dict (as `workload.noop`)."""
    return {"run": run, "step": step, "t": time.time()}


class Timed:
    """ASGI middleware: counts POSTs to the serve path and sums their wall time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0
        self.seconds = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        timed = scope["type"] == "http" and scope["method"] == "POST"
        if not (timed and scope["path"] == SERVE_PATH):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def sent(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.calls += 1
                self.seconds += time.perf_counter() - start

        await self.app(scope, receive, sent)


def create_app(event: str) -> Timed:
    """The FastAPI app with W1's function on `event`, wrapped in the timing middleware."""
    client = inngest.Inngest(app_id=APP_ID)

    @client.create_function(fn_id=FN_ID, trigger=inngest.TriggerEvent(event=event), retries=0)
    def three_steps(ctx: inngest.ContextSync) -> None:
        run = int(ctx.event.data["i"])  # type: ignore[arg-type]
        ctx.step.run("s1", noop, run, 1)
        ctx.step.run("s2", noop, run, 2)
        ctx.step.run("s3", noop, run, 3)

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [three_steps])
    timed = Timed(app)

    @app.get("/bench/stats")
    def stats() -> dict[str, Any]:
        return {"calls": timed.calls, "seconds": timed.seconds}

    return timed


def main() -> None:
    """Serve the app on 127.0.0.1 (the SDK reads INNGEST_DEV to find Stepline)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--event", required=True, help="the event that triggers the function")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.event),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
