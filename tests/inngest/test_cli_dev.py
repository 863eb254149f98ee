"""`stepline dev --sdk-url`: a real `stepline dev` process keeps an SDK app synced and runs it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import inngest

from tests.cli.support import COMMAND, cli_env, serving
from tests.engine.support import eventually
from tests.loopback import free_port

Serve = Callable[..., str]


def test_dev_syncs_the_app_given_by_url_even_when_it_starts_later(
    tmp_path: Path, py_app: Serve
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}/api/inngest"  # nothing serves it yet
    log = tmp_path / "dev.log"
    command = ["dev", "--db", str(tmp_path / "s.db"), "--port", str(port), "--sdk-url", app_url]
    with serving(url, *command, log=log, cwd=tmp_path):
        client = inngest.Inngest(
            app_id="late", is_production=False, api_base_url=url, event_api_base_url=url
        )

        @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="t/late"))
        def hello(ctx: inngest.ContextSync) -> str:
            return ctx.step.run("greet", lambda: f"hello {ctx.event.data['who']}")

        py_app(client, [hello], app_port)
        functions = eventually(
            lambda: _function_ids(url), what="the app to be synced", timeout_seconds=30
        )
        assert functions == ["late-hello"]
        sent = httpx.post(f"{url}/e/key", json={"name": "t/late", "data": {"who": "ann"}})
        [event_id] = sent.json()["ids"]

        def finished() -> Any:
            runs = httpx.get(f"{url}/v1/events/{event_id}/runs").json()["data"]
            return runs if runs and runs[0]["status"] == "COMPLETED" else None

        [run] = eventually(finished, what="the run to complete", timeout_seconds=30)
        assert run["output"] == "hello ann"
        assert "synced" in log.read_text()
        ended = "✓ late-hello COMPLETED in "  # an SDK app's run gets its lines too
        eventually(lambda: ended in log.read_text(), what="the run's end line", timeout_seconds=5)
        assert f"▶ late-hello {run['id']} started (event t/late)" in log.read_text()


def test_a_bad_signing_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    secret = "signkey-test-NOTHEX" + "z" * 40
    done = subprocess.run(
        [*COMMAND, "dev", "--db", str(tmp_path / "s.db"), "--signing-key", secret],
        env=cli_env("http://127.0.0.1:1"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "signing key" in done.stderr
    assert secret not in done.stderr and "zzzz" not in done.stderr


def _function_ids(url: str) -> list[str] | None:
    ids = [fn["id"] for fn in httpx.get(f"{url}/v1/functions").json()["data"]]
    return ids or None
