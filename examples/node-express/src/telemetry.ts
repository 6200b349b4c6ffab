// Traces, metrics and logs: OpenTelemetry spans exported over OTLP/HTTP (protobuf), prom-client
// metrics at GET /metrics, and pino JSON lines on stdout.
//
// The openai SDK has no tracing of its own, so every HTTP attempt it makes (retries included)
// goes through `tracedFetch`, which wraps it in a CLIENT span carrying the OpenTelemetry GenAI
// attribute `gen_ai.operation.name`.

import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import pino from "pino";
import client from "prom-client";

// The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the processor OTEL_BSP_*) by itself.
export const tracing = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
  ? new NodeTracerProvider({
      resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME ?? "node-express-example" }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    })
  : undefined;
tracing?.register();
export const tracer = trace.getTracer("node-express-example");

export const log = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime });

export const metrics = {
  registry: client.register,
  // Calls that still failed after the SDK's own retries: what a dashboard of user-visible
  // provider trouble wants (faultline: counts = "calls").
  llmFailures: new client.Counter({ name: "chat_llm_failures_total", help: "LLM calls that failed after the SDK's retries", labelNames: ["reason"] }),
  // The OpenTelemetry GenAI metric gen_ai.client.token.usage, as Prometheus names it.
  tokens: new client.Histogram({
    name: "gen_ai_client_token_usage",
    help: "Tokens per LLM call, by gen_ai.token.type",
    labelNames: ["gen_ai_token_type", "gen_ai_operation_name"],
    buckets: [16, 64, 256, 1024, 4096, 16384],
  }),
  circuitRejections: new client.Counter({ name: "chat_circuit_open_rejections_total", help: "Calls failed fast by the open circuit breaker, never sent" }),
  requests: new client.Counter({ name: "chat_requests_total", help: "Requests answered, by route and status", labelNames: ["route", "status"] }),
};

/** `fetch` for the openai SDK: one span per HTTP attempt, under the request's span. */
export const tracedFetch: typeof fetch = async (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  const operation = url.endsWith("/embeddings") ? "embeddings" : "chat";
  return tracer.startActiveSpan("llm_attempt", { kind: SpanKind.CLIENT }, context.active(), async (span) => {
    span.setAttribute("gen_ai.operation.name", operation);
    span.setAttribute("gen_ai.system", "openai");
    try {
      const response = await fetch(input, init);
      span.setAttribute("http.response.status_code", response.status);
      if (response.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
      return response;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).name });
      throw error;
    } finally {
      span.end();
    }
  });
};
