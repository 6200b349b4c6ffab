// A small Express chat service, the kind faultline is built to test, with its own conventions:
//
//   POST /v1/chat     {"prompt": "..."}            -> {"reply", "reqId", "notice", "cached"}
//   POST /v1/tickets  {"summary": "...", "user"}   -> 201 {"ticket", "reqId"}
//   GET  /metrics     prom-client (Prometheus text)
//   GET  /healthz
//
// Errors are {"error": {"message", "code"}, "reqId"} with an honest status. One pino JSON line
// per request carries `reqId` and `tokens.in` / `tokens.out`. See README.md.

import { randomUUID } from "node:crypto";

import { SpanKind } from "@opentelemetry/api";
import express, { NextFunction, Request, Response } from "express";

import { config, has } from "./config";
import { complete, LlmFailure } from "./llm";
import { log, metrics, tracer, tracing } from "./telemetry";
import { cache, cached, cacheKey, fileTicket, remember, TicketsUnavailable, weatherFor } from "./tools";

/** What the request's one log line says, filled in as the request goes. */
type Summary = { tokens: { in: number; out: number }; cached: boolean; degraded: boolean; code?: string; prompt?: string };

declare module "express-serve-static-core" {
  interface Request {
    reqId: string;
    summary: Summary;
  }
}

const app = express();
app.disable("x-powered-by");
app.use(express.json({ limit: "64kb" }));

// The request id: the caller's x-request-id when it looks like one, else a fresh one. It is in
// every answer, every log line and the request's span.
app.use((req: Request, res: Response, next: NextFunction) => {
  const given = req.get("x-request-id") ?? "";
  req.reqId = /^[A-Za-z0-9_-]{1,64}$/.test(given) ? given : randomUUID();
  req.summary = { tokens: { in: 0, out: 0 }, cached: false, degraded: false };
  res.setHeader("x-request-id", req.reqId);
  const started = performance.now();
  tracer.startActiveSpan(`${req.method} ${req.path}`, { kind: SpanKind.SERVER }, (span) => {
    span.setAttribute("request.id", req.reqId);
    res.on("finish", () => {
      span.setAttribute("http.response.status_code", res.statusCode);
      span.end();
      if (req.path === "/metrics" || req.path === "/healthz") return;
      metrics.requests.inc({ route: req.path, status: String(res.statusCode) });
      const s = req.summary;
      const line = {
        reqId: req.reqId,
        route: req.path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
        tokens: s.tokens,
        cached: s.cached,
        degraded: s.degraded,
        ...(s.code ? { code: s.code } : {}),
        ...(has("leak-secrets") && s.prompt ? { prompt: s.prompt } : {}),
      };
      if (res.statusCode >= 500) log.error(line, "request failed");
      else log.info(line, "request");
    });
    next();
  });
});

function fail(req: Request, res: Response, status: number, code: string, message: string) {
  req.summary.code = code;
  res.status(status).json({ error: { message, code }, reqId: req.reqId });
}

const TOLD: Record<LlmFailure["reason"], [number, string]> = {
  circuit_open: [503, "The assistant is unavailable right now. Please try again in a minute."],
  timeout: [504, "The assistant took too long to answer. Please try again."],
  rate_limited: [503, "The assistant is busy right now. Please try again in a minute."],
  unavailable: [503, "The assistant is unavailable right now. Please try again shortly."],
  rejected: [502, "The assistant could not process this question. Please rephrase it."],
  bad_answer: [502, "The assistant sent an answer we could not read. Please try again."],
};

app.get("/healthz", (_req, res) => {
  res.json({ ok: true });
});

app.get("/metrics", async (_req, res) => {
  res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
});

app.post("/v1/chat", async (req: Request, res: Response) => {
  const prompt = typeof req.body?.prompt === "string" ? req.body.prompt.trim() : "";
  if (!prompt) return fail(req, res, 400, "bad_request", 'Please send a JSON body with a non-empty "prompt".');
  req.summary.prompt = prompt;

  const key = cacheKey(prompt);
  const hit = await cached(req.reqId, key);
  if (hit !== undefined) {
    req.summary.cached = true;
    return res.json({ reply: hit, reqId: req.reqId, notice: null, cached: true });
  }

  const weather = await weatherFor(req.reqId, prompt);
  const notice = weather === "unavailable" ? "live data unavailable" : null;
  req.summary.degraded = notice !== null;
  const context = weather && weather !== "unavailable" ? `Live weather: ${weather}` : "";

  const answer = await complete(req.reqId, `You are a helpful support assistant. ${context}`, prompt);
  req.summary.tokens = { in: answer.inputTokens, out: answer.outputTokens };
  // A degraded answer is not cached: once the tool is back, the live one should be given.
  if (!notice) await remember(key, answer.text);
  res.json({ reply: answer.text, reqId: req.reqId, notice, cached: false });
});

app.post("/v1/tickets", async (req: Request, res: Response) => {
  const summary = typeof req.body?.summary === "string" ? req.body.summary.trim() : "";
  const user = typeof req.body?.user === "string" ? req.body.user.trim() : "";
  if (!summary || !user) return fail(req, res, 400, "bad_request", 'Please send a JSON body with a "summary" and a "user".');
  const ticket = await fileTicket(req.reqId, { subject: summary, user });
  res.status(201).json({ ticket, reqId: req.reqId });
});

// Every failure ends here: an honest status and sentence, the request id, nothing internal.
app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
  if (has("stack-trace-errors")) {
    req.summary.code = "internal";
    return res.status(500).json({ error: String(error), stack: (error as Error)?.stack, reqId: req.reqId });
  }
  if (error instanceof LlmFailure) {
    const [status, message] = TOLD[error.reason];
    return fail(req, res, status, `llm_${error.reason}`, message);
  }
  if (error instanceof TicketsUnavailable) {
    return fail(req, res, 503, "tickets_unavailable", "We could not file your ticket right now. Please try again shortly.");
  }
  if ((error as { type?: string })?.type === "entity.parse.failed") {
    return fail(req, res, 400, "bad_request", "The request body is not valid JSON.");
  }
  log.error({ reqId: req.reqId, event: "unexpected", reason: (error as Error)?.name }, "unexpected error");
  fail(req, res, 500, "internal", "Something went wrong on our side. Please try again.");
});

const server = app.listen(config.port, "127.0.0.1", () => {
  log.info({ event: "listening", port: config.port, defects: [...config.defects] }, "listening");
});

// On SIGTERM: stop taking requests, flush spans, close Redis, exit.
async function shutdown(signal: string) {
  log.info({ event: "shutdown", signal }, "shutting down");
  const closed = new Promise((r) => server.close(r));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
  await closed;
  await tracing?.shutdown();
  cache?.disconnect();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
