"""Dry runs in the dashboard: Run now's "Dry run" box starts one, marked in lists and on its page,
and the runs page filters them (both stores, over HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepline.engine.engine import Engine
from tests.flow.support import completed
from tests.flow.test_dry_run import dry_app
from tests.server.conftest import Served

FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_run_now_with_dry_run_starts_a_marked_dry_run(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    seen: list[Any] = []
    served = serve(make_engine(dry_app(seen)))
    same = {**FORM, "origin": served.url}

    dry = served.http.post(
        "/functions/child/invoke", content="payload=%7B%7D&dry_run=true", headers=same
    )
    real = served.http.post("/functions/child/invoke", content="payload=%7B%7D", headers=same)

    assert dry.status_code == real.status_code == 303
    dry_id, real_id = (r.headers["location"].rsplit("/", 1)[1] for r in (dry, real))
    assert completed(served.engine, dry_id).dry_run
    assert not completed(served.engine, real_id).dry_run
    page = served.http.get(f"/runs/{dry_id}")
    assert 'id="run-dry-run"' in page.text
    assert 'id="run-dry-run"' not in served.http.get(f"/runs/{real_id}").text
    filtered = served.http.get("/runs", params={"dry_run": "true"}).text
    assert dry_id in filtered and real_id not in filtered
    assert 'name="dry_run" value="true" checked' in filtered
    everything = served.http.get("/runs").text
    assert dry_id in everything and real_id in everything and "dry run</span>" in everything
    assert 'name="dry_run" value="true">' in served.http.get("/functions").text
