"""W3C trace context in NATS headers, when OpenTelemetry is installed (the ``otel``
extra). Without it, or without a tracer provider, nothing is added."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

try:  # pragma: no cover - which branch runs depends on the environment
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind

    _tracer: Any = trace.get_tracer("guild-python")
    ENABLED = True
except ImportError:  # pragma: no cover
    ENABLED = False


@contextlib.contextmanager
def client_span(service: str, operation: str, subject: str) -> Iterator[dict[str, str]]:
    """A CLIENT span around one request; yields the headers that carry its context
    (``traceparent``, ``tracestate``: lowercase, as the services read them)."""
    headers: dict[str, str] = {}
    if not ENABLED or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # No tracer provider set: no span to make, but a context the caller holds (a
        # span of its own propagation) still travels.
        propagate.inject(headers) if ENABLED else None
        yield headers
        return
    with _tracer.start_as_current_span(
        f"guild.{service}.{operation}",
        kind=SpanKind.CLIENT,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "rpc.service": f"guild-{service}",
            "rpc.method": operation,
        },
    ):
        propagate.inject(headers)
        yield headers


@contextlib.contextmanager
def handling_span(name: str, traceparent: str | None) -> Iterator[None]:
    """A span for handling a delivered message, child of its creation context (its
    ``traceparent``), so a reply made inside joins the sender's trace."""
    if not ENABLED:
        yield
        return
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER):
        yield


__all__ = ["ENABLED", "client_span", "handling_span"]
_ = Link  # re-exported name kept for links made by callers
