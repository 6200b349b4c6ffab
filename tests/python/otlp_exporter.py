"""Sends spans to faultline's OTLP collector fake with the official OpenTelemetry Python SDK and
its OTLP/HTTP exporter (protobuf, gzip), configured only by the standard environment:
OTEL_EXPORTER_OTLP_ENDPOINT (the fake's `{otlp}`), OTEL_EXPORTER_OTLP_COMPRESSION.

Run by tests/otlp_collector.rs; exits non-zero if the export did not succeed.
"""

import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode


class Recording(OTLPSpanExporter):
    """The OTLP exporter, remembering whether every export succeeded."""

    failures = 0

    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            Recording.failures += 1
        return result


def main():
    provider = TracerProvider(resource=Resource.create({"service.name": "py-otlp-test"}))
    provider.add_span_processor(BatchSpanProcessor(Recording()))
    tracer = provider.get_tracer("faultline.test")

    with tracer.start_as_current_span("POST /api/chat", kind=trace.SpanKind.SERVER) as root:
        root.set_attribute("request.id", "py-req-1")
        for resend in range(2):
            with tracer.start_as_current_span("llm_attempt", kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("http.request.resend_count", resend)
                if resend == 0:
                    span.set_status(Status(StatusCode.ERROR, "503"))

    flushed = provider.force_flush(10_000)
    provider.shutdown()
    if not flushed or Recording.failures:
        print(f"export failed: flushed={flushed} failures={Recording.failures}", file=sys.stderr)
        sys.exit(1)
    print("exported 3 spans")


if __name__ == "__main__":
    main()
