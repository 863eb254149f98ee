"""Tracing set up from the standard `OTEL_*` variables, in a fresh process; off without them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import stepline
from stepline.testing import run_function

app = stepline.App("env")

@app.function(id="hello", triggers=[stepline.event("say/hello")])
def hello(ctx):
    return ctx.step.run("greet", lambda: "hi")

print(run_function(hello, event={"name": "say/hello"}).status)
"""


def run_script(env: dict[str, str]) -> str:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_console_exporter_from_otel_traces_exporter() -> None:
    out = run_script({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "env-test"})
    assert "COMPLETED" in out.splitlines()
    assert '"name": "step greet"' in out
    assert '"name": "run hello"' in out
    assert '"service.name": "env-test"' in out


@pytest.mark.parametrize("env", [{}, {"OTEL_TRACES_EXPORTER": "none"}])
def test_no_spans_without_configuration(env: dict[str, str]) -> None:
    assert run_script(env).strip() == "COMPLETED"
