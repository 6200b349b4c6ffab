"""A chat service with unusual names, for `faultline init`'s tests (standard library only).

Nothing in it is named the way the reference target names things, so every value init
writes has to be found, not defaulted:

    ASSISTANT_LLM_URL, ASSISTANT_LLM_TOKEN   an OpenAI-style base URL and key
    HTTP_PORT                                where it listens (its command has no port)
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT       the full OTLP/HTTP traces URL (spans as JSON)
    GREETING_STYLE, ARCHIVE_DB_URL           a setting, and an address no fake stands for

    GET  /ready     health (/healthz and /health are 404)
    POST /v2/ask    {"ask": {"question": ...}} -> {"data": {"reply", "fallbackUsed"},
                    "meta": {"traceId"}}; any other body gets a 422 that shows the shape. The
                    request id comes in and goes out as `x-correlation-id` (x-request-id is
                    ignored), and is at /meta/traceId; errors are {"problem": {"title", "detail"}}
    GET  /metrics   Prometheus text, OpenTelemetry GenAI names; upstream failures per attempt
    stderr          one JSON line per request: severity, text, req.id, usage.prompt/completion

With `--bare` it has none of that: no health path, no metrics, no logs, no traces, its own
request ids, errors in plain text; its chat route is POST /api/chat {"message": ...}.
"""

import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BARE = "--bare" in sys.argv
LLM_URL = os.environ.get("ASSISTANT_LLM_URL", "http://127.0.0.1:9/v1")
LLM_TOKEN = os.environ.get("ASSISTANT_LLM_TOKEN", "")
PORT = int(os.environ.get("HTTP_PORT", "8080"))
TRACES_URL = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
STYLE = os.environ.get("GREETING_STYLE", "plain")
ARCHIVE = os.environ.get("ARCHIVE_DB_URL", "sqlite:///tmp/archive.db")

lock = threading.Lock()
tokens = {"input": 0, "output": 0, "calls": 0}
failures = {"attempts": 0}
answered = {}


class Router:
    """A tiny router, declared as web frameworks do: router.post("/path", handler)."""

    def __init__(self):
        self.routes = {}

    def post(self, path, handler):
        self.routes[path] = handler


router = Router()


def log(**fields):
    if not BARE:
        sys.stderr.write(json.dumps(fields) + "\n")
        sys.stderr.flush()


def ask_llm(question, request_id, spans, trace_id, parent):
    """One chat completion, retried once; every failed attempt is counted."""
    body = json.dumps({"model": "gpt-4o-mini",
                       "messages": [{"role": "user", "content": question}]}).encode()
    for attempt in range(2):
        started = time.time_ns()
        status = None
        try:
            request = urllib.request.Request(
                LLM_URL + "/chat/completions", data=body, method="POST",
                headers={"content-type": "application/json", "x-request-id": request_id,
                         "authorization": "Bearer " + LLM_TOKEN})
            with urllib.request.urlopen(request, timeout=3) as response:
                status = response.status
                answer = json.load(response)
            return answer
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0
        finally:
            spans.append(span(trace_id, "llm.call", started, parent,
                              {"gen_ai.system": "openai", "http.response.status_code": status or 0}))
        with lock:
            failures["attempts"] += 1
        time.sleep(0.2)
    return None


def span(trace_id, name, started, parent, attributes):
    value = lambda v: {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}
    out = {"traceId": trace_id, "spanId": secrets.token_hex(8), "name": name,
           "startTimeUnixNano": str(started), "endTimeUnixNano": str(time.time_ns()),
           "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()]}
    if parent:
        out["parentSpanId"] = parent
    return out


def export(spans):
    if BARE or not TRACES_URL:
        return
    payload = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "init-target"}}]},
        "scopeSpans": [{"scope": {"name": "init-target"}, "spans": spans}]}]}
    request = urllib.request.Request(TRACES_URL, data=json.dumps(payload).encode(),
                                     method="POST", headers={"content-type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=2).read()
    except OSError:
        pass


def ask(handler, body):
    """POST /v2/ask (or /api/chat when bare)."""
    given = handler.headers.get("x-correlation-id", "")
    request_id = secrets.token_hex(6) if BARE or not given else given
    if BARE:
        question = body.get("message") if isinstance(body, dict) else None
    else:
        ask_part = body.get("ask") if isinstance(body, dict) else None
        question = ask_part.get("question") if isinstance(ask_part, dict) else None
    if not isinstance(question, str) or not question.strip():
        return handler.reply(422, {"problem": {
            "title": "Unprocessable",
            "detail": 'Send a JSON body like {"ask": {"question": "your question"}}.'}},
            request_id)
    trace_id, root = secrets.token_hex(16), secrets.token_hex(8)
    started = time.time_ns()
    spans = []
    answer = ask_llm(question, request_id, spans, trace_id, root)
    if answer is None:
        log(severity="ERROR", text="upstream failed", req={"id": request_id})
        if BARE:
            return handler.reply_text(500, "error")
        status = 502
        handler.reply(502, {"problem": {"title": "Upstream failure",
                                        "detail": "The assistant is unavailable right now, please retry in a minute."},
                            "meta": {"traceId": request_id}}, request_id)
    else:
        usage = answer.get("usage", {})
        with lock:
            tokens["input"] += usage.get("prompt_tokens", 0)
            tokens["output"] += usage.get("completion_tokens", 0)
            tokens["calls"] += 1
        text = answer["choices"][0]["message"]["content"]
        log(severity="INFO", text="answered", req={"id": request_id},
            usage={"prompt": usage.get("prompt_tokens", 0),
                   "completion": usage.get("completion_tokens", 0)})
        status = 200
        if BARE:
            handler.reply(200, {"text": text}, request_id)
        else:
            handler.reply(200, {"data": {"reply": text, "fallbackUsed": False},
                                "meta": {"traceId": request_id}}, request_id)
    spans.append(span(trace_id, "POST /v2/ask", started, None,
                      {"app.request_id": request_id, "http.response.status_code": status}))
    export(spans)


if BARE:
    router.post("/api/chat", ask)
else:
    router.post("/v2/ask", ask)


def metrics():
    with lock:
        lines = ["# TYPE gen_ai_client_token_usage histogram"]
        for kind in ("input", "output"):
            labels = f'gen_ai_token_type="{kind}",gen_ai_request_model="gpt-4o-mini"'
            lines.append(f'gen_ai_client_token_usage_bucket{{{labels},le="+Inf"}} {tokens["calls"]}')
            lines.append(f"gen_ai_client_token_usage_sum{{{labels}}} {tokens[kind]}")
            lines.append(f"gen_ai_client_token_usage_count{{{labels}}} {tokens['calls']}")
        lines.append("# TYPE assistant_upstream_failures_total counter")
        lines.append(f"assistant_upstream_failures_total {failures['attempts']}")
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, request_id=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if request_id:
            self.send_header("x-correlation-id", request_id)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def reply_text(self, status, text, content_type="text/plain"):
        data = text.encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/ready" and not BARE:
            return self.reply(200, {"status": "ready", "style": STYLE})
        if self.path == "/metrics" and not BARE:
            return self.reply_text(200, metrics(), "text/plain; version=0.0.4")
        self.reply(404, {"problem": {"title": "Not found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        handler = router.routes.get(self.path)
        if handler is None:
            return self.reply(404, {"problem": {"title": "Not found"}})
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        handler(self, body)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
