"""`stepline apps` and `stepline apps sync URL` as real processes against a real server, with a
real inngest-py app to sync (both stores)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import inngest
import pytest

from tests.cli.support import run_cli
from tests.inngest.conftest import Stepline
from tests.loopback import free_port

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]
pytestmark = pytest.mark.timeout(90)
CLI_SECONDS = 20.0  # each call starts a Python process, slow on a busy machine


def _serve_shop(stepline: Stepline, py_app: Serve) -> str:
    client = stepline.client("shop")

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="cli/greet"))
    def greet(ctx: inngest.ContextSync) -> str:
        return "hello"

    @client.create_function(fn_id="bill", trigger=inngest.TriggerEvent(event="cli/bill"))
    def bill(ctx: inngest.ContextSync) -> str:
        return "billed"

    return py_app(client, [greet, bill])


def test_sync_prints_the_app_and_its_function_count_and_apps_lists_it(
    stepline: Stepline, py_app: Serve
) -> None:
    url = _serve_shop(stepline, py_app)

    synced = run_cli(stepline.url, "apps", "sync", url, timeout=CLI_SECONDS)

    assert synced.returncode == 0, synced.stderr
    assert synced.stdout == f"synced app shop: 2 functions ({url})\n"
    listed = run_cli(stepline.url, "apps", timeout=CLI_SECONDS)
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.split()[:1] == ["shop"]]
    cells = row.split()
    assert cells[1] == "sdk" and cells[2].startswith("py:v") and cells[3] == url
    assert row.rstrip().endswith("shop-bill, shop-greet")
    as_json = run_cli(stepline.url, "apps", "--json", timeout=CLI_SECONDS)
    assert [(a["id"], a["functions"]) for a in json.loads(as_json.stdout)] == [
        ("shop", ["shop-bill", "shop-greet"])
    ]
    again = run_cli(stepline.url, "apps", "sync", url, "--json", timeout=CLI_SECONDS)
    assert json.loads(again.stdout)["functions"] == ["shop-bill", "shop-greet"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:3000/api/inngest", "error: url: must be an http(s) URL with a host"),
        ("http://127.0.0.1:{port}/api/inngest", "error: could not reach http://127.0.0.1:"),
    ],
)
def test_a_sync_that_fails_exits_2_with_one_line_saying_why(
    stepline: Stepline, url: str, message: str
) -> None:
    url = url.format(port=free_port())
    result = run_cli(stepline.url, "apps", "sync", url, timeout=CLI_SECONDS)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    listed = run_cli(stepline.url, "apps", "--json", timeout=CLI_SECONDS)
    assert listed.stdout.strip() == "[]"
