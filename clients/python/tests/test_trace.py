"""W3C trace context in the request headers, when OpenTelemetry is installed and a
tracer provider is set."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guild import _trace
from guild.aio import AsyncGuild


async def test_a_call_is_a_client_span_whose_context_travels(g: AsyncGuild) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("the agent's step") as parent:
        with _trace.client_span("bus", "verify_audit", "guild.bus.v1.verify_audit.operator") as headers:
            pass
        assert (await g.bus.verify_audit()).ok
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert headers["traceparent"].split("-")[1] == trace_id
    spans = {s.name: s for s in exporter.get_finished_spans()}
    call = spans["guild.bus.verify_audit"]
    assert call.kind == trace.SpanKind.CLIENT and call.parent is not None
    assert format(call.context.trace_id, "032x") == trace_id
    assert call.attributes is not None and call.attributes["rpc.method"] == "verify_audit"
