"""Tracing set up from the standard `OTEL_*` variables, in a fresh process; off without them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

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


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A loopback OTLP/HTTP endpoint keeping what is posted to it; stopped after the test."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_otlp_over_http_to_the_endpoint_given(
    collector: tuple[str, list[tuple[str, bytes]]],
) -> None:
    endpoint, received = collector
    out = run_script({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "env-otlp"})
    assert out.strip() == "COMPLETED"
    names = []
    for path, body in received:
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names += [span.name for span in scope_spans.spans]
    assert sorted(names) == ["run hello", "step greet"]
