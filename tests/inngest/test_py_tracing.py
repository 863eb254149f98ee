"""An SDK app's runs are traced as Python functions' are (both stores): a span per step attempt
the app reports and one per run, in the trace of the `traceparent` sent with the event, which
the app's requests carry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import fastapi
import inngest
import inngest.fast_api

from tests.engine.tracing_support import hex_span, in_memory_tracing, spans_of
from tests.inngest.conftest import Stepline, pay_declined_once
from tests.loopback import Servers

TRACE_ID = "5b8efff798038103d269b633813fc60c"
PARENT_ID = "eee19b7ec3c1b174"


def test_sdk_step_attempts_and_run_are_spans_of_the_given_trace(
    stepline: Stepline, servers: Servers
) -> None:
    client = stepline.client("shop")
    pay = pay_declined_once(client)
    seen: list[str | None] = []

    app = fastapi.FastAPI()

    @app.middleware("http")
    async def note_trace(
        request: fastapi.Request,
        call_next: Callable[[fastapi.Request], Awaitable[fastapi.Response]],
    ) -> fastapi.Response:
        if request.method == "POST":
            seen.append(request.headers.get("traceparent"))
        return await call_next(request)

    inngest.fast_api.serve(app, client, [pay])
    with in_memory_tracing() as provider:
        stepline.sync(servers.start(app) + "/api/inngest")
        response = stepline.http.post(
            "/e/test-key",
            json={"name": "shop/pay", "data": {}},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        run = stepline.run_of(response.json()["ids"][0])
        spans = spans_of(provider)
    assert run.status == "COMPLETED", run.error
    [run_span] = [span for span in spans if span.name.startswith("run ")]
    trace_id, run_span_id, parent = hex_span(run_span)
    assert (trace_id, parent) == (TRACE_ID, PARENT_ID)
    attempts = sorted(
        (span for span in spans if span.name == "step charge"), key=lambda s: s.start_time or 0
    )
    assert [(s.attributes or {}).get("stepline.outcome") for s in attempts] == ["retry", "ok"]
    assert [(s.attributes or {}).get("stepline.attempt") for s in attempts] == [1, 2]
    assert {hex_span(s)[2] for s in attempts} == {run_span_id}
    assert [event.name for event in attempts[0].events] == ["exception"]
    # every request to the app carries the run span's context
    assert seen and set(seen) == {f"00-{TRACE_ID}-{run_span_id}-01"}
