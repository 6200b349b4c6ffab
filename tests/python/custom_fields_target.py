"""A small chat service with conventions of its own, for tests/profile_target.rs.

It speaks nothing like the reference target: `POST /v1/ask {"q": ...}` answers
`{"reply": ..., "meta": {"id": ...}}`; its one JSON log line per request names the request
`req_id`, the tokens `usage.in` / `usage.out`, the level `severity`; its Prometheus metrics
count LLM calls that still failed after the official openai SDK's own retries
(`chat_llm_failures_total`, declared before its first use, as prometheus_client does) and
tokens by kind (`chat_tokens_total{kind="prompt"}`). It has no cache and no agent steps.
Described by one faultline.toml, it must pass the built-in scenarios' log and metrics checks.

    python custom_fields_target.py PORT

Standard library and the openai SDK only. OPENAI_BASE_URL / OPENAI_API_KEY name the provider.
"""

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai

llm = openai.OpenAI(timeout=5.0)  # the SDK's default retries: 2, with backoff and jitter
lock = threading.Lock()
counters = {"failures": 0, "prompt": 0, "completion": 0}


def log(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def metrics():
    with lock:
        c = dict(counters)
    return (
        "# HELP chat_llm_failures_total LLM calls that failed after the SDK's retries.\n"
        "# TYPE chat_llm_failures_total counter\n"
        + (f'chat_llm_failures_total{{model="gpt-4o-mini"}} {c["failures"]}\n' if c["failures"] else "")
        + "# HELP chat_tokens_total Tokens used, by kind.\n"
        "# TYPE chat_tokens_total counter\n"
        f'chat_tokens_total{{kind="prompt"}} {c["prompt"]}\n'
        f'chat_tokens_total{{kind="completion"}} {c["completion"]}\n'
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # the access log is not the service's log
        pass

    def send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.send(200, {"ok": True})
        elif self.path == "/metrics":
            self.send(200, metrics(), "text/plain; version=0.0.4")
        else:
            self.send(404, {"problem": "Not found."})

    def do_POST(self):
        rid = self.headers.get("x-request-id") or uuid.uuid4().hex
        length = int(self.headers.get("content-length") or 0)
        try:
            question = str(json.loads(self.rfile.read(length))["q"])
        except Exception:
            log(severity="info", req_id=rid, message="bad request", status=400, usage={"in": 0, "out": 0})
            return self.send(400, {"problem": 'Send {"q": "your question"}.', "meta": {"id": rid}})
        if self.path != "/v1/ask":
            return self.send(404, {"problem": "Not found.", "meta": {"id": rid}})
        try:
            answer = llm.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": question}],
                extra_headers={"x-request-id": rid},
            )
        except openai.OpenAIError as error:
            with lock:
                counters["failures"] += 1
            log(severity="error", req_id=rid, message="llm failed", status=503,
                reason=type(error).__name__, usage={"in": 0, "out": 0})
            return self.send(503, {"problem": "The assistant is unavailable right now; please try again shortly.",
                                   "meta": {"id": rid}})
        used_in = answer.usage.prompt_tokens if answer.usage else 0
        used_out = answer.usage.completion_tokens if answer.usage else 0
        with lock:
            counters["prompt"] += used_in
            counters["completion"] += used_out
        log(severity="info", req_id=rid, message="answered", status=200, usage={"in": used_in, "out": used_out})
        self.send(200, {"reply": answer.choices[0].message.content, "meta": {"id": rid}})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    log(severity="info", message="listening", port=int(sys.argv[1]))
    server.serve_forever()
