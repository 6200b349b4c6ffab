// The two tools: a weather lookup (a read; when it is down the answer goes on without live data)
// and the tickets API (a write; retried only under one Idempotency-Key, so a retry can never
// file the ticket twice). And the Redis answer cache, skipped while Redis is down.

import { createHash, randomUUID } from "node:crypto";

import Redis from "ioredis";

import { config, has } from "./config";
import { log } from "./telemetry";

const NONCE = /\s*\[fl-[0-9a-f]{8}\]/g;

export const cache = config.redisUrl
  ? new Redis(config.redisUrl, {
      // A slow or absent cache must not slow answers: fail commands at once while disconnected.
      commandTimeout: 200,
      connectTimeout: 500,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(100 * times, 1000),
    })
  : undefined;
let lastCacheWarning = 0;
// ioredis reports connection trouble as events: one warning a second, not one per reconnect.
cache?.on("error", (error: Error) => {
  if (Date.now() - lastCacheWarning > 1000) {
    lastCacheWarning = Date.now();
    log.warn({ event: "cache_unavailable", reason: error.name }, "redis unreachable; answering without the cache");
  }
});

export function cacheKey(prompt: string): string {
  return "chat:" + createHash("sha256").update(prompt.replace(NONCE, "").trim().toLowerCase()).digest("hex");
}

/** The cached answer, or undefined on a miss or when Redis is down (with a warning). */
export async function cached(reqId: string, key: string): Promise<string | undefined> {
  if (!cache) return undefined;
  try {
    return (await cache.get(key)) ?? undefined;
  } catch (error) {
    log.warn({ reqId, event: "cache_unavailable", reason: (error as Error).name }, "cache read failed; skipping the cache");
    return undefined;
  }
}

export async function remember(key: string, answer: string): Promise<void> {
  try {
    await cache?.set(key, answer, "EX", 300);
  } catch {
    // Already warned on the read.
  }
}

const WEATHER = /weather|temperature|rain|warm/i;

/** Live weather for a weather question: text, or "unavailable" when the tool is down. */
export async function weatherFor(reqId: string, prompt: string): Promise<string | "unavailable" | undefined> {
  if (!config.weatherUrl || !WEATHER.test(prompt)) return undefined;
  const city = /in ([A-Z][a-z]+)/.exec(prompt)?.[1] ?? "London";
  try {
    const reply = await fetch(`${config.weatherUrl}/weather?city=${encodeURIComponent(city)}`, {
      headers: { "x-request-id": reqId },
      signal: AbortSignal.timeout(config.toolTimeoutMs),
    });
    if (!reply.ok) throw new Error(`status ${reply.status}`);
    return await reply.text();
  } catch (error) {
    log.warn({ reqId, event: "tool_unavailable", tool: "weather", reason: (error as Error).name }, "weather tool failed");
    if (has("no-tool-fallback")) throw error;
    return "unavailable";
  }
}

export class TicketsUnavailable extends Error {}

/** Files a ticket; retries a failed write twice with backoff and jitter, under one key. */
export async function fileTicket(reqId: string, ticket: { subject: string; user: string }): Promise<string> {
  if (!config.ticketsUrl) throw new TicketsUnavailable("TICKETS_API_URL is not set");
  const key = randomUUID();
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt * (0.5 + Math.random() / 2)));
    try {
      const reply = await fetch(`${config.ticketsUrl}/tickets`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-request-id": reqId,
          "idempotency-key": has("no-idempotency-key") ? randomUUID() : key,
        },
        body: JSON.stringify(ticket),
        signal: AbortSignal.timeout(config.toolTimeoutMs),
      });
      if (reply.ok) return ((await reply.json()) as { id: string }).id;
      last = new Error(`status ${reply.status}`);
      // A refused write (4xx) is refused again on a retry.
      if (reply.status < 500 && reply.status !== 429) break;
    } catch (error) {
      last = error;
    }
  }
  log.warn({ reqId, event: "tool_unavailable", tool: "tickets", reason: String(last) }, "ticket write failed");
  throw new TicketsUnavailable(String(last));
}
