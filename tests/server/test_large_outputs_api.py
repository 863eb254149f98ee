"""Large outputs over real HTTP, on both stores: the API shows their size and a download link,
never their data; the download routes serve their JSON exactly (streamed from several chunks on
PostgreSQL) to a `read` token but not to a token limited to another function; Inngest clients
and the `Client` get the data itself."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

import stepline
from stepline import errors
from stepline.engine.engine import Engine
from stepline.server import models
from stepline.server.auth import COOKIE, AuthSettings
from stepline.store import schema as t
from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore
from tests.server.conftest import Served
from tests.server.large_outputs_support import (
    ROWS,
    SMALL_LIMITS,
    Finished,
    finished,
    finished_report,
    large_outputs_app,
    make_rows,
)
from tests.server.test_inngest_read_api import GET_RUN, GET_STEP_OUTPUT

pytestmark = pytest.mark.timeout(60)

BOOTSTRAP = "large-outputs-token-0123456789"
INNGEST = {"x-stepline-shape": "inngest"}


@dataclass(frozen=True)
class Setup:
    served: Served
    report: Finished

    @property
    def run_id(self) -> str:
        return self.report.run.id


@pytest.fixture
def setup(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Setup:
    engine = make_engine(large_outputs_app(), settings=SMALL_LIMITS)
    return Setup(served=serve(engine), report=finished_report(engine))


def _chunks(store: Store, blob_id: str) -> int:
    with store._read() as conn:  # type: ignore[attr-defined]  # (beside a running engine)
        query = select(func.count()).where(t.blob_chunks.c.blob_id == blob_id)
        return int(conn.execute(query).scalar_one())


def test_the_api_shows_a_large_outputs_size_and_link_never_its_data(setup: Setup) -> None:
    http, run_id, report = setup.served.http, setup.run_id, setup.report
    response = http.get(f"/v1/runs/{run_id}")
    assert response.status_code == 200
    models.RunDetailResponse.model_validate(response.json())  # the documented shape
    assert "row-00000" not in response.text
    run = response.json()["data"]
    assert run["output"] is None
    assert run["output_blob"] == {
        "size": report.result.size,
        "download_url": f"/v1/runs/{run_id}/output",
    }
    steps = {step["id"]: step for step in run["steps"]}
    assert steps["make-rows"]["output"] is None
    assert steps["make-rows"]["output_blob"] == {
        "size": report.step.size,
        "download_url": f"/v1/runs/{run_id}/steps/{report.step_hash}/output",
    }
    assert steps["note"]["output"] == {"rows": ROWS}  # small: inline, as before
    assert steps["note"]["output_blob"] is None
    [listed] = http.get("/v1/runs", params={"function_id": "report"}).json()["data"]
    assert listed["output"] is None and listed["output_blob"] == run["output_blob"]


def test_a_download_is_the_outputs_json_exactly(setup: Setup) -> None:
    http, run_id, report = setup.served.http, setup.run_id, setup.report
    store = setup.served.engine.store
    assert report.step.size > 1024 * 1024  # several chunks on PostgreSQL
    if isinstance(store, PostgresStore):
        assert _chunks(store, report.step.id) == 2
    step = http.get(f"/v1/runs/{run_id}/steps/{report.step_hash}/output")
    assert step.status_code == 200, step.text
    assert step.content == store.read_blob(report.step)
    assert json.loads(step.content) == make_rows()
    assert step.headers["content-type"] == "application/json"
    assert step.headers["content-length"] == str(report.step.size)
    assert step.headers["content-disposition"] == (
        f'attachment; filename="{run_id}-make-rows-output.json"'
    )
    result = http.get(f"/v1/runs/{run_id}/output")
    assert result.status_code == 200, result.text
    assert json.loads(result.content) == {"note": {"rows": ROWS}, "rows": make_rows()}
    assert result.headers["content-disposition"] == f'attachment; filename="{run_id}-output.json"'
    [note] = [s for s in store.get_steps(run_id) if s.id == "note"]
    inline = http.get(f"/v1/runs/{run_id}/steps/{note.hash}/output")  # any output downloads
    assert inline.status_code == 200 and inline.content == b'{"rows":12000}'


def test_downloads_of_nothing_answer_404_saying_why(setup: Setup) -> None:
    http, run_id = setup.served.http, setup.run_id
    failed = finished(setup.served.engine, "fails")
    cases = {
        "/v1/runs/no-such-run/output": "no run with id 'no-such-run'",
        f"/v1/runs/{run_id}/steps/{'0' * 40}/output": f"run {run_id} has no step with hash",
        f"/v1/runs/{failed.id}/output": "has no output (it failed; its error is in the run)",
    }
    for path, message in cases.items():
        response = http.get(path)
        assert response.status_code == 404, path
        assert message in response.json()["error"], response.text


def test_a_read_token_downloads_and_a_token_limited_to_another_function_cannot(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    engine = make_engine(large_outputs_app(), settings=SMALL_LIMITS)
    served = serve(engine, AuthSettings(api_token=BOOTSTRAP))
    report = finished_report(engine)
    paths = [
        f"/v1/runs/{report.run.id}/output",
        f"/v1/runs/{report.run.id}/steps/{report.step_hash}/output",
    ]

    def token(name: str, **body: object) -> httpx.Client:
        made = served.http.post(
            "/v1/tokens",
            json={"name": name, **body},
            headers={"authorization": f"Bearer {BOOTSTRAP}"},
        )
        assert made.status_code == 201, made.text
        secret = made.json()["data"]["secret"]
        return httpx.Client(
            base_url=served.url, headers={"authorization": f"Bearer {secret}"}, timeout=10
        )

    with (
        token("reader", role="read") as reader,
        token("report-only", role="read", functions=["report"]) as mine,
        token("other-only", role="operate", functions=["other"]) as theirs,
    ):
        for path in paths:
            assert reader.get(path).status_code == 200, path
            assert mine.get(path).status_code == 200, path
            refused = theirs.get(path)
            assert refused.status_code == 404, path  # as if the run did not exist
            assert "row-00000" not in refused.text
            assert served.http.get(path).status_code == 401


def test_the_dashboards_download_opens_with_its_sign_in_cookie(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    engine = make_engine(large_outputs_app(), settings=SMALL_LIMITS)
    served = serve(engine, AuthSettings(api_token=BOOTSTRAP))
    report = finished_report(engine)
    path = f"/runs/{report.run.id}/steps/{report.step_hash}/output"
    signed = {"cookie": f"{COOKIE}={BOOTSTRAP}"}

    anonymous = served.http.get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?")
    signed_in = served.http.get(path, headers=signed)
    assert signed_in.status_code == 200
    assert signed_in.content == engine.store.read_blob(report.step)
    assert signed_in.headers["content-disposition"].startswith("attachment; ")
    missing = served.http.get(f"/runs/{report.run.id}/steps/nope/output", headers=signed)
    assert missing.status_code == 404
    assert "has no step with hash 'nope'" in html.unescape(missing.text)


def test_inngest_clients_get_the_data_itself(setup: Setup) -> None:
    http, run_id, report = setup.served.http, setup.run_id, setup.report
    value = {"note": {"rows": ROWS}, "rows": make_rows()}
    run = http.get(f"/v1/runs/{run_id}", headers=INNGEST)
    assert run.status_code == 200, run.text
    assert run.json()["data"]["output"] == value
    event_runs = http.get(f"/v1/events/{report.run.event_id}/runs", headers=INNGEST)
    assert [r["output"] for r in event_runs.json()["data"]] == [value]
    answer = http.post("/v0/gql", json={"query": GET_RUN, "variables": {"run_id": run_id}})
    assert json.loads(answer.json()["data"]["run"]["output"]) == value
    output_id = f"{run_id}:{report.step_hash}"
    answer = http.post(
        "/v0/gql", json={"query": GET_STEP_OUTPUT, "variables": {"output_id": output_id}}
    )
    assert json.loads(answer.json()["data"]["runTraceSpanOutputByID"]["data"]) == make_rows()


def test_the_client_downloads_an_output_by_step_id_or_hash(setup: Setup) -> None:
    run_id, report = setup.run_id, setup.report
    with stepline.Client(setup.served.url) as client:
        assert client.get_run(run_id)["output"] is None
        assert client.output(run_id) == {"note": {"rows": ROWS}, "rows": make_rows()}
        file = io.BytesIO()
        written = client.download_output(run_id, file, step="make-rows")
        assert written == report.step.size
        assert file.getvalue() == setup.served.engine.store.read_blob(report.step)
        assert client.output(run_id, step=report.step_hash) == make_rows()
        assert client.output(run_id, step="note") == {"rows": ROWS}
        with pytest.raises(errors.NotFound, match="has no step 'nope' \\(its steps: "):
            client.output(run_id, step="nope")
        with pytest.raises(errors.NotFound, match="no run with id"):
            client.output("no-such-run")


def test_a_local_client_downloads_from_the_database(setup: Setup) -> None:
    store = setup.served.engine.store
    assert isinstance(store, SqliteStore | PostgresStore)
    db = store.path if isinstance(store, SqliteStore) else store.url
    with stepline.Client.local(db) as client:
        assert client.output(setup.run_id, step="make-rows") == make_rows()
        with pytest.raises(errors.NotFound, match="has no output"):
            client.output(finished(setup.served.engine, "fails").id)
