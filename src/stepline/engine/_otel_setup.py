"""Finding Stepline's tracer: the application's tracer provider, or one made from `OTEL_*`.

Only `engine.tracing` uses this module: `preload` when a worker starts, the rest once per
process (or per `configure`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger("stepline.tracing")
_ENV_KEYS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
CHOSEN_IDS: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "stepline_chosen_ids", default=None
)


def preload() -> None:
    """Import the OpenTelemetry SDK's tracing, if installed, without choosing a provider.

    About 20 ms: a worker pays it when it starts rather than in its first run, whose slots
    would all wait for it.
    """
    with contextlib.suppress(ImportError):
        import opentelemetry.sdk.trace  # noqa: F401


def global_tracer() -> Tracer | None:
    """Stepline's tracer on the application's provider, or on one set up from `OTEL_*`."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:  # the `otel` extra is not installed
        if any(os.environ.get(key) for key in _ENV_KEYS):
            logger.warning("OTEL_* is set but the OpenTelemetry SDK is not installed: no traces")
        return None
    given = trace.get_tracer_provider()
    if isinstance(given, TracerProvider):
        return own_tracer(given)
    if not any(os.environ.get(key) for key in _ENV_KEYS):
        return None
    provider = _provider_from_env()
    if provider is None:
        return None
    trace.set_tracer_provider(provider)
    return own_tracer(provider)


def _provider_from_env() -> TracerProvider | None:
    """A provider exporting as `OTEL_TRACES_EXPORTER` says (otlp by default, console, none)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
    )

    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    exporter: SpanExporter | None
    if kind == "none":
        return None
    exporter = ConsoleSpanExporter() if kind == "console" else _otlp_exporter()
    if exporter is None:
        return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "stepline")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _otlp_exporter() -> SpanExporter | None:
    """OTLP over HTTP (protobuf), or gRPC if `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` says so.

    The exporter reads the other `OTEL_EXPORTER_OTLP_*` variables (endpoint, headers, ...).
    """
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    try:
        if protocol.strip().lower() == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as Grpc,
            )

            return Grpc()  # type: ignore[no-any-return,unused-ignore]
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter as Http,
        )

        return Http()  # type: ignore[no-any-return,unused-ignore]
    except ImportError:
        logger.warning("no traces: OTLP needs opentelemetry-exporter-otlp (stepline[otel])")
        return None


def own_tracer(provider: TracerProvider) -> Tracer:
    """Stepline's tracer, whose ids can be chosen (for the run span) for one call.

    Its id generator returns the provider's ids, or those `CHOSEN_IDS` holds (trace id, span
    id) in the current context; only this tracer has it.
    """
    from opentelemetry.sdk.trace import Tracer
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class ChosenIds(IdGenerator):
        """The provider's ids, or those `CHOSEN_IDS` holds for the current call."""

        def __init__(self, usual: IdGenerator) -> None:
            self._usual = usual

        def generate_span_id(self) -> int:
            chosen = CHOSEN_IDS.get()
            return self._usual.generate_span_id() if chosen is None else chosen[1]

        def generate_trace_id(self) -> int:
            chosen = CHOSEN_IDS.get()
            return self._usual.generate_trace_id() if chosen is None else chosen[0]

    tracer = provider.get_tracer("stepline")
    assert isinstance(tracer, Tracer)
    tracer.id_generator = ChosenIds(tracer.id_generator)
    return tracer
