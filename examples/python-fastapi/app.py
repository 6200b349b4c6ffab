"""A small FastAPI chat service, the kind faultline is built to test.

It uses the official `openai` SDK for embeddings and chat, `redis` (redis-py) as a cache, and
`httpx` for a weather tool; everything it depends on comes from environment variables, so
faultline can point it at its fakes without changing a line:

    OPENAI_BASE_URL, OPENAI_API_KEY   the LLM provider
    REDIS_URL                         the cache (optional)
    WEATHER_API_URL                   the weather tool (optional)
    LLM_TIMEOUT_S                     per-call timeout (default 4)
    OTEL_EXPORTER_OTLP_ENDPOINT       where to export traces over OTLP/HTTP (optional)
    EXAMPLE_DEFECTS                   defects to plant, comma-separated (see DEFECTS below)

It follows the practices faultline checks: one JSON log line per request, the request id in
every answer, timeouts on every upstream call, retries with backoff (the SDK's), a circuit
breaker that fails fast during a long outage, graceful degradation when the cache or the tool
is down, and honest error messages. Each request is traced (a root span with its request id),
and so is every attempt the SDK makes at the provider, retries included: the SDK's HTTP
client goes through a transport that wraps each attempt in a span.
"""

import hashlib
import json
import os
import re
import sys
import time
import traceback
import uuid

import httpx
import openai
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# Each defect breaks one practice faultline checks; README.md names the gate that must fail.
DEFECTS = {
    "no-retry": "the SDK's retries off: a passing 503 becomes the user's error",
    "leak-secrets": "the raw question in the request log line",
    "stack-trace-errors": "error bodies carry the Python traceback",
    "no-tool-fallback": "a weather tool outage fails the whole answer",
}
PLANTED = {d.strip() for d in os.environ.get("EXAMPLE_DEFECTS", "").split(",") if d.strip()}
if PLANTED - DEFECTS.keys():
    sys.exit(f"EXAMPLE_DEFECTS names {sorted(PLANTED - DEFECTS.keys())}; the defects are: {', '.join(DEFECTS)}")

LLM_TIMEOUT_S = float(os.environ.get("LLM_TIMEOUT_S", "4"))
MODEL = os.environ.get("LLM_MODEL", "gpt-4o-mini")

if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    # The exporter reads the endpoint (and OTEL_BSP_*) itself; spans left are flushed at exit.
    provider = TracerProvider(resource=Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "python-fastapi-example")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
tracer = trace.get_tracer("faultline.example")


class TracedTransport(httpx.AsyncBaseTransport):
    """Every HTTP attempt the SDK makes, retries included, as an `llm_attempt` span under the
    request's span (GenAI semantic-convention attribute `gen_ai.operation.name`)."""

    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        operation = "embeddings" if request.url.path.endswith("/embeddings") else "chat"
        with tracer.start_as_current_span("llm_attempt", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", operation)
            span.set_attribute("gen_ai.system", "openai")
            response = await self.inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            return response

    async def aclose(self):
        await self.inner.aclose()


llm = openai.AsyncOpenAI(timeout=LLM_TIMEOUT_S, max_retries=0 if "no-retry" in PLANTED else 1,
                         http_client=httpx.AsyncClient(transport=TracedTransport()))
cache = aioredis.from_url(os.environ["REDIS_URL"], socket_timeout=0.2) if os.environ.get("REDIS_URL") else None
weather_url = os.environ.get("WEATHER_API_URL")
http = httpx.AsyncClient(timeout=1.5)

app = FastAPI()
NONCE = re.compile(r"\s*\[fl-[0-9a-f]{8}\]")


class CircuitBreaker:
    """Fail fast while the provider is down: open after `threshold` failures in a row, then
    let one probe through per `cooldown_s` until a call succeeds. A call that started before
    the circuit last closed says nothing about the provider now: its failure is not counted
    (calls that hung through an outage would otherwise reopen the circuit once it is over)."""

    def __init__(self, threshold: int = 5, cooldown_s: float = 1.0):
        self.threshold, self.cooldown_s = threshold, cooldown_s
        self.failures, self.opened_at, self.closed_at = 0, None, 0.0

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= self.cooldown_s:
            self.opened_at = time.monotonic()  # this caller is the probe
            return True
        return False

    def record(self, ok: bool, started: float):
        if ok:
            if self.opened_at is not None:
                log(level="warn", event="circuit_closed")
                self.closed_at = time.monotonic()
            self.failures, self.opened_at = 0, None
            return
        if started < self.closed_at:
            return
        self.failures += 1
        if self.failures >= self.threshold and self.opened_at is None:
            self.opened_at = time.monotonic()
            log(level="warn", event="circuit_opened", failures=self.failures)


breaker = CircuitBreaker(cooldown_s=float(os.environ.get("CIRCUIT_COOLDOWN_S", "1")))


def log(**fields):
    """One JSON line on stdout; never API keys or raw user text."""
    fields.setdefault("level", "info")
    fields["ts"] = time.time()
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def request_id_of(request: Request) -> str:
    if getattr(request.state, "request_id", None) is None:
        given = request.headers.get("x-request-id", "")
        valid = re.fullmatch(r"[A-Za-z0-9_-]{1,64}", given)
        request.state.request_id = given if valid else uuid.uuid4().hex
    return request.state.request_id


@app.middleware("http")
async def traced(request: Request, call_next):
    """The request's root span carries its request id; the handler's spans nest in it."""
    current = trace.get_current_span()
    if current.is_recording():
        # FastAPI traces itself when OpenTelemetry is installed: annotate its server span.
        current.set_attribute("request.id", request_id_of(request))
        return await call_next(request)
    name = f"{request.method} {request.url.path}"
    with tracer.start_as_current_span(name, kind=trace.SpanKind.SERVER) as span:
        span.set_attribute("request.id", request_id_of(request))
        response = await call_next(request)
        span.set_attribute("http.response.status_code", response.status_code)
        return response


def fail(status: int, message: str, request_id: str) -> JSONResponse:
    body = {"error": message, "requestId": request_id}
    if "stack-trace-errors" in PLANTED and sys.exc_info()[0] is not None:
        body = {"error": traceback.format_exc(), "requestId": request_id}
    return JSONResponse(body, status_code=status, headers={"x-request-id": request_id})


@app.get("/healthz")
async def healthz():
    return {"ok": True}


@app.post("/api/chat")
async def chat(request: Request):
    started = time.monotonic()
    request_id = request_id_of(request)
    totals = {"inputTokens": 0, "outputTokens": 0, "cacheHit": False, "degraded": False}

    def done(status: int, error: str | None = None):
        leaked = {"message": message} if "leak-secrets" in PLANTED and message else {}
        log(level="error" if error else "info", requestId=request_id, route="/api/chat",
            model=MODEL, status=status, latencyMs=round((time.monotonic() - started) * 1000),
            error=error, **totals, **leaked)

    message = ""

    try:
        body = await request.json()
        message = str(body["message"]).strip()
        assert message
    except Exception:
        done(400, "bad_request")
        return fail(400, 'Please send a JSON body with a non-empty "message".', request_id)

    key = "answer:" + hashlib.sha256(NONCE.sub("", message).lower().encode()).hexdigest()
    if cache is not None:
        try:
            cached = await cache.get(key)
            if cached:
                totals["cacheHit"] = True
                done(200)
                return JSONResponse({"answer": cached.decode(), "requestId": request_id,
                                     "cacheHit": True, "degraded": False, "banner": None},
                                    headers={"x-request-id": request_id})
        except Exception as error:  # Redis down: skip the cache, say so, go on.
            log(level="warn", requestId=request_id, event="cache_unavailable", reason=type(error).__name__)

    banner = None
    context = ""
    if weather_url and re.search(r"weather|temperature|rain|warm", message, re.I):
        city = (re.search(r"in ([A-Z][a-z]+)", message) or [None, "London"])[1]
        try:
            reply = await http.get(f"{weather_url}/weather", params={"city": city},
                                   headers={"x-request-id": request_id})
            reply.raise_for_status()
            context = "Live weather: " + reply.text
        except Exception as error:  # Tool down: answer without live data, and say so.
            if "no-tool-fallback" in PLANTED:
                done(502, "tool_unavailable")
                return fail(502, "The weather service is unavailable. Please try again.", request_id)
            banner = "live data unavailable"
            totals["degraded"] = True
            log(level="warn", requestId=request_id, event="tool_unavailable", tool="weather",
                reason=type(error).__name__)

    if not breaker.allow():
        done(503, "circuit_open")
        return fail(503, "The AI service is unavailable right now. Please try again shortly.", request_id)
    call_started = time.monotonic()
    try:
        completion = await llm.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "You are a helpful support assistant. " + context},
                      {"role": "user", "content": message}],
            extra_headers={"x-request-id": request_id},
        )
    except openai.APITimeoutError:
        breaker.record(False, call_started)
        done(504, "llm_timeout")
        return fail(504, "The AI service timed out. Please try a shorter question.", request_id)
    except openai.RateLimitError:
        breaker.record(False, call_started)
        done(429, "llm_rate_limited")
        return fail(429, "The AI service is busy right now. Please try again in a minute.", request_id)
    except (openai.APIConnectionError, openai.InternalServerError, openai.APIStatusError) as error:
        if isinstance(error, openai.APIStatusError) and 400 <= error.status_code < 500:
            # The provider refused this request (a 400): says nothing of its health.
            done(502, "llm_rejected")
            return fail(502, "The AI service could not process this question. Please rephrase it.", request_id)
        breaker.record(False, call_started)
        done(503, "llm_unavailable")
        return fail(503, "The AI service is unavailable right now. Please try again shortly.", request_id)
    except Exception:  # A 200 whose body is no completion (cut-off JSON): honest, not a 500 page.
        breaker.record(False, call_started)
        done(502, "llm_bad_answer")
        return fail(502, "The AI service sent an answer we could not read. Please try again.", request_id)

    breaker.record(True, call_started)
    answer = completion.choices[0].message.content or ""
    if completion.usage:
        totals["inputTokens"] = completion.usage.prompt_tokens
        totals["outputTokens"] = completion.usage.completion_tokens
    if cache is not None:
        try:
            await cache.set(key, answer, ex=300)
        except Exception:
            pass  # Already warned on read when Redis is down.
    done(200)
    return JSONResponse({"answer": answer, "requestId": request_id, "cacheHit": False,
                         "degraded": totals["degraded"], "banner": banner},
                        headers={"x-request-id": request_id})
