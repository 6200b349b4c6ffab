// The LLM call: the official openai SDK with its own retries (0.5 s doubling, up to 25% jitter,
// retry-after honoured), a timeout per attempt, a deadline for the whole call, and a circuit
// breaker that fails fast while the provider is down.

import OpenAI from "openai";

import { config, has } from "./config";
import { log, metrics, tracedFetch } from "./telemetry";

// OPENAI_BASE_URL and OPENAI_API_KEY are read by the SDK itself.
const openai = new OpenAI({
  timeout: config.attemptTimeoutMs,
  // The SDK's default (2 retries); the defect turns them off.
  ...(has("no-retry") ? { maxRetries: 0 } : {}),
  fetch: tracedFetch,
});

/**
 * Open after `threshold` failed calls in a row; then one probe per cool-down until one succeeds.
 * A call that started before the circuit last closed says nothing about the provider now: its
 * failure is not counted (calls that hung through an outage would reopen it once it is over).
 */
class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private closedAt = 0;

  constructor(private threshold: number, private cooldownMs: number) {}

  allow(): boolean {
    if (this.openedAt === undefined) return true;
    if (Date.now() - this.openedAt >= this.cooldownMs) {
      this.openedAt = Date.now(); // this caller is the probe; the next one waits a cool-down
      return true;
    }
    return false;
  }

  record(ok: boolean, started: number): void {
    if (ok) {
      if (this.openedAt !== undefined) {
        log.warn({ event: "circuit_closed" }, "provider answered again; circuit closed");
        this.closedAt = Date.now();
      }
      this.failures = 0;
      this.openedAt = undefined;
      return;
    }
    if (started < this.closedAt) return;
    this.failures += 1;
    if (this.failures >= this.threshold && this.openedAt === undefined) {
      this.openedAt = Date.now();
      log.warn({ event: "circuit_opened", failures: this.failures }, "provider failing; circuit open");
    }
  }
}

const breaker = new CircuitBreaker(config.breakerThreshold, config.breakerCooldownMs);

const REASONS = ["circuit_open", "timeout", "rate_limited", "unavailable", "rejected", "bad_answer"] as const;
// Every known series starts at 0, as Prometheus's instrumentation guide asks: a series that
// appears only on the first failure reads as "no data", not "no failures".
for (const reason of REASONS.filter((r) => r !== "circuit_open")) metrics.llmFailures.inc({ reason }, 0);

export type Completion = { text: string; inputTokens: number; outputTokens: number };

/** Why a call failed, in the terms the user is told. */
export class LlmFailure extends Error {
  constructor(
    readonly reason: (typeof REASONS)[number],
    readonly cause?: unknown,
  ) {
    super(reason);
  }
}

export async function complete(reqId: string, system: string, prompt: string): Promise<Completion> {
  if (!breaker.allow()) {
    // Not an LLM call at all, so not an LLM failure: counted on its own.
    metrics.circuitRejections.inc();
    throw new LlmFailure("circuit_open");
  }
  const started = Date.now();
  try {
    const completion = await openai.chat.completions.create(
      { model: config.model, messages: [{ role: "system", content: system }, { role: "user", content: prompt }] },
      { headers: { "x-request-id": reqId }, signal: AbortSignal.timeout(config.deadlineMs) },
    );
    const text = completion.choices[0]?.message?.content;
    if (typeof text !== "string") throw new LlmFailure("bad_answer");
    breaker.record(true, started);
    const usage = { inputTokens: completion.usage?.prompt_tokens ?? 0, outputTokens: completion.usage?.completion_tokens ?? 0 };
    metrics.tokens.observe({ gen_ai_token_type: "input", gen_ai_operation_name: "chat" }, usage.inputTokens);
    metrics.tokens.observe({ gen_ai_token_type: "output", gen_ai_operation_name: "chat" }, usage.outputTokens);
    return { text, ...usage };
  } catch (error) {
    const failure = classify(error);
    // A refused request (400) says nothing about the provider's health.
    if (failure.reason !== "rejected") breaker.record(false, started);
    metrics.llmFailures.inc({ reason: failure.reason });
    throw failure;
  }
}

function classify(error: unknown): LlmFailure {
  if (error instanceof LlmFailure) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError || error instanceof OpenAI.APIUserAbortError) return new LlmFailure("timeout", error);
  if (error instanceof OpenAI.RateLimitError) return new LlmFailure("rate_limited", error);
  if (error instanceof OpenAI.APIError && error.status !== undefined && error.status >= 400 && error.status < 500) {
    return new LlmFailure("rejected", error);
  }
  if (error instanceof OpenAI.APIError) return new LlmFailure("unavailable", error);
  // A 200 whose body is not a completion (cut-off JSON) throws a SyntaxError from the SDK.
  return new LlmFailure("bad_answer", error);
}
