"""Reasons given with risky actions over the API and the Client: a cancel's, a replay's, a bulk
action's and a pause's reason is stored with what it touched and shown in its JSON; bodies stay
optional; a reason over 500 characters is refused naming the field (both stores)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.server import models
from tests.server.conftest import Served
from tests.server.reasons_support import LONG_REASON, holding_app, sleeping_run


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(holding_app()))


def run_json(served: Served, run_id: str) -> dict[str, Any]:
    body = served.http.get(f"/v1/runs/{run_id}").json()
    models.RunDetailResponse.model_validate(body)
    data: dict[str, Any] = body["data"]
    return data


def test_a_cancel_with_a_reason_is_recorded_and_shown(served: Served) -> None:
    run_id = sleeping_run(served.engine)

    response = served.http.post(f"/v1/runs/{run_id}/cancel", json={"reason": "vendor outage"})

    assert response.status_code == 200, response.text
    models.RunResponse.model_validate(response.json())
    cancelled = run_json(served, run_id)
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["reason"] == "cancelled by request"
    assert cancelled["cancellation"] == {
        "at": cancelled["ended_at"],
        "requested_by": "api",
        "reason": "vendor outage",
    }
    assert response.json()["data"]["cancellation"] == cancelled["cancellation"]


def test_a_cancel_without_a_body_still_works_and_records_the_requester(served: Served) -> None:
    run_id = sleeping_run(served.engine)

    response = served.http.post(f"/v1/runs/{run_id}/cancel")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["cancellation"]["requested_by"] == "api"
    assert response.json()["data"]["cancellation"]["reason"] is None


def test_a_reason_over_500_characters_is_refused_naming_the_field(served: Served) -> None:
    run_id = sleeping_run(served.engine)

    for path, body in [
        (f"/v1/runs/{run_id}/cancel", {"reason": LONG_REASON}),
        (f"/v1/runs/{run_id}/replay", {"reason": LONG_REASON}),
        (f"/v1/runs/{run_id}/rerun", {"reason": LONG_REASON}),
        ("/v1/runs/cancel", {"function_id": "hold", "reason": LONG_REASON}),
        ("/v1/functions/hold/pause", {"reason": LONG_REASON}),
    ]:
        refused = served.http.post(path, json=body)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["field"] == "reason", path
        assert "500" in refused.json()["error"], path

    assert run_json(served, run_id)["status"] == "RUNNING"
    assert served.http.get("/v1/functions/hold").json()["data"]["paused"] is False


def test_a_replay_and_a_rerun_keep_their_reason_with_the_new_run(served: Served) -> None:
    first = sleeping_run(served.engine, "a")
    served.http.post(f"/v1/runs/{first}/cancel")

    replay = served.http.post(f"/v1/runs/{first}/replay", json={"reason": "after the fix"})
    assert replay.status_code == 201, replay.text
    replayed = replay.json()["data"]["run_id"]
    served.http.post(f"/v1/runs/{replayed}/cancel")
    rerun = served.http.post(f"/v1/runs/{first}/rerun", json={"reason": "one more time"})
    assert rerun.status_code == 201, rerun.text

    assert run_json(served, replayed)["trigger"]["reason"] == "after the fix"
    assert run_json(served, rerun.json()["data"]["run_id"])["trigger"]["reason"] == "one more time"
    assert run_json(served, first)["trigger"]["reason"] is None


def test_a_replay_refused_by_a_busy_singleton_is_409_naming_the_run_in_the_way(
    served: Served,
) -> None:
    active = sleeping_run(served.engine, "a")

    refused = served.http.post(f"/v1/runs/{active}/replay", json={"reason": "again"})

    assert refused.status_code == 409
    assert refused.json()["run_id"] == active
    assert f"singleton: run {active} is still active" in refused.json()["error"]


def test_bulk_actions_store_their_reason_on_each_run(served: Served) -> None:
    runs = [sleeping_run(served.engine, key) for key in ("a", "b")]

    only_reason = served.http.post("/v1/runs/cancel", json={"reason": "bad deploy"})
    cancelled = served.http.post(
        "/v1/runs/cancel", json={"function_id": "hold", "reason": "bad deploy"}
    )
    replayed = served.http.post(
        "/v1/runs/replay", json={"function_id": "hold", "reason": "deploy fixed"}
    )

    assert only_reason.status_code == 400, "a reason is no criterion"
    assert cancelled.json()["data"]["affected"] == 2
    for run_id in runs:
        assert run_json(served, run_id)["cancellation"]["reason"] == "bad deploy"
    assert replayed.status_code == 201, replayed.text
    replays = served.http.get("/v1/runs", params={"trigger_kind": "replay"}).json()["data"]
    assert [run["trigger"]["reason"] for run in replays] == ["deploy fixed", "deploy fixed"]


def test_a_pause_keeps_its_time_requester_and_reason_until_resumed(served: Served) -> None:
    paused = served.http.post("/v1/functions/hold/pause", json={"reason": "vendor outage"})

    assert paused.status_code == 200, paused.text
    models.FunctionResponse.model_validate(paused.json())
    pause = paused.json()["data"]["pause"]
    assert (pause["by"], pause["reason"]) == ("api", "vendor outage")
    assert pause["at"] is not None
    [listed] = served.http.get("/v1/functions").json()["data"]
    assert listed["pause"] == pause
    resumed = served.http.post("/v1/functions/hold/resume").json()["data"]
    assert (resumed["paused"], resumed["pause"]) == (False, None)
    bare = served.http.post("/v1/functions/hold/pause").json()["data"]["pause"]
    assert (bare["by"], bare["reason"]) == ("api", None)


def test_the_client_passes_reasons(served: Served) -> None:
    run_id = sleeping_run(served.engine, "a")
    with stepline.Client(served.url) as client:
        cancelled = client.cancel(run_id, reason="vendor outage")
        paused = client.pause("hold", reason="maintenance")
        with pytest.raises(stepline.errors.InvalidInput, match="reason"):
            client.cancel(run_id, reason=LONG_REASON)
        client.resume("hold")
        new_id = client.replay(run_id, reason="after the fix")

    assert cancelled["cancellation"]["reason"] == "vendor outage"
    assert (paused["pause"]["by"], paused["pause"]["reason"]) == ("api", "maintenance")
    assert run_json(served, new_id)["trigger"]["reason"] == "after the fix"
