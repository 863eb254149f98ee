"""Stepline's tracing to the OpenTelemetry SDK's in-memory exporter, for the tracing tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stepline.engine import tracing

_EXPORTERS: dict[int, InMemorySpanExporter] = {}


@contextmanager
def in_memory_tracing() -> Iterator[TracerProvider]:
    """Trace runs to a fresh in-memory exporter (see `spans_of`); tracing off afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _EXPORTERS[id(provider)] = exporter
    tracing.configure(provider)
    try:
        yield provider
    finally:
        tracing.configure(None)
        del _EXPORTERS[id(provider)]


def spans_of(provider: TracerProvider) -> list[ReadableSpan]:
    """The spans `provider` exported so far."""
    return list(_EXPORTERS[id(provider)].get_finished_spans())


def hex_span(span: ReadableSpan) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) in hex."""
    context = span.get_span_context()
    assert context is not None
    parent = f"{span.parent.span_id:016x}" if span.parent else None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", parent
