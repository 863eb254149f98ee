"""Bulk replay and cancel by error class, previewed first: a preview counts and shows the runs
and touches nothing; the real action then affects exactly the previewed count (both stores)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.server.conftest import Served

EVENT = "bulk/work"


def failing_app() -> stepline.App:
    app = stepline.App("bulk")

    @app.function(id="work", triggers=[stepline.event(EVENT)], retries=0)
    def work(ctx: stepline.Context[Step]) -> str:
        kind = ctx.event["data"].get("kind")
        if kind == "timeout":
            raise TimeoutError("the vendor did not answer")
        if kind == "value":
            raise ValueError("a broken record")
        return "ok"

    return app


def _ended(served: Served, kinds: list[str]) -> list[str]:
    ids = served.engine.send([{"name": EVENT, "data": {"kind": kind}} for kind in kinds])
    runs = [served.engine.operations.runs_for_event(event_id)[0].id for event_id in ids]
    return [served.engine.wait_for_run(run_id, 10).id for run_id in runs]


def _post(served: Served, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = served.http.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_replay_by_error_class_previewed_then_done(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(failing_app()))
    runs = _ended(served, ["timeout", "value", "timeout", "ok", "timeout"])
    timeouts = {runs[0], runs[2], runs[4]}
    selection = {"status": "FAILED", "error_name": "TimeoutError"}
    before = len(served.engine.list_runs())

    preview = _post(served, "/v1/runs/replay", {**selection, "preview": True})

    assert preview["preview"] is True and preview["affected"] == 0
    assert preview["count"] == 3
    assert {run["id"] for run in preview["sample"]} == timeouts
    assert len(served.engine.list_runs()) == before  # nothing touched
    listed = served.http.get("/v1/runs", params={"error_name": "ValueError"}).json()["data"]
    assert [run["id"] for run in listed] == [runs[1]]

    done = _post(served, "/v1/runs/replay", selection)

    assert done["affected"] == preview["count"]
    replays = [r for r in served.engine.list_runs() if r.replay_of is not None]
    assert {r.replay_of for r in replays} == timeouts


def test_cancel_preview_counts_only_active_runs(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(failing_app()))
    _ended(served, ["timeout"])

    preview = _post(served, "/v1/runs/cancel", {"function_id": "work", "preview": True})

    assert (preview["count"], preview["sample"]) == (0, [])
    refused = served.http.post("/v1/runs/cancel", json={"preview": True})
    assert refused.status_code == 400  # a preview needs a criterion like the action
    with stepline.Client(served.url) as client:
        seen = client.preview_runs("replay", function_id="work", error_name="TimeoutError")
        assert seen["count"] == 1


def test_a_replay_preview_of_a_paused_functions_runs_is_refused_as_the_replay_would_be(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(failing_app()))
    _ended(served, ["timeout"])
    served.engine.operations.pause("work")
    before = len(served.engine.list_runs())

    preview = served.http.post("/v1/runs/replay", json={"status": "FAILED", "preview": True})
    replay = served.http.post("/v1/runs/replay", json={"status": "FAILED"})

    assert preview.status_code == replay.status_code == 409
    assert preview.json()["error"] == replay.json()["error"]
    assert "function 'work' is paused" in preview.json()["error"]
    assert len(served.engine.list_runs()) == before
