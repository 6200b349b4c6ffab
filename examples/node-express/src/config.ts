// Configuration, from environment variables only (a twelve-factor service), and the planted
// defects that EXAMPLE_DEFECTS switches on to prove faultline's gates catch them.

export const DEFECTS = [
  "no-retry", // the SDK's retries off: a passing 503 becomes the user's error
  "leak-secrets", // the raw prompt in the request log: passwords and card numbers users type
  "stack-trace-errors", // error bodies carry the exception's stack
  "no-idempotency-key", // ticket writes retried under a fresh key each try
  "no-tool-fallback", // a weather tool outage fails the whole answer
] as const;
export type Defect = (typeof DEFECTS)[number];

function number(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`environment variable ${name} is ${JSON.stringify(raw)}; expected a number of milliseconds or a count, e.g. ${name}=${fallback}`);
  }
  return value;
}

function defects(): Set<Defect> {
  const wanted = (process.env.EXAMPLE_DEFECTS ?? "").split(",").map((d) => d.trim()).filter(Boolean);
  for (const d of wanted) {
    if (!(DEFECTS as readonly string[]).includes(d)) {
      throw new Error(`EXAMPLE_DEFECTS names "${d}"; the defects are: ${DEFECTS.join(", ")}`);
    }
  }
  return new Set(wanted as Defect[]);
}

export const config = {
  port: number("PORT", 3000),
  model: process.env.CHAT_MODEL ?? "gpt-4o-mini",
  // One attempt at the provider may take this long; the whole call, retries included, gets
  // CHAT_DEADLINE_MS, so a black-holed provider costs a user at most that.
  attemptTimeoutMs: number("CHAT_ATTEMPT_TIMEOUT_MS", 4000),
  deadlineMs: number("CHAT_DEADLINE_MS", 5000),
  breakerThreshold: number("BREAKER_THRESHOLD", 3),
  breakerCooldownMs: number("BREAKER_COOLDOWN_MS", 1000),
  redisUrl: process.env.REDIS_URL || undefined,
  weatherUrl: process.env.WEATHER_API_URL || undefined,
  ticketsUrl: process.env.TICKETS_API_URL || undefined,
  toolTimeoutMs: number("TOOL_TIMEOUT_MS", 800),
  defects: defects(),
};

export function has(defect: Defect): boolean {
  return config.defects.has(defect);
}
