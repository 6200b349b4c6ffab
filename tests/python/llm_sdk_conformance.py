"""Conformance of the faultline fake LLM with the official `openai` and `anthropic` SDKs.

Usage: llm_sdk_conformance.py BASE_URL CONTROL_URL API_KEY

BASE_URL is the fake LLM (`http://127.0.0.1:PORT`), CONTROL_URL its control API (faults are
switched through it, and the journal read from it), API_KEY the key the fake expects. Each
check prints `ok <name>` or `FAIL <name>: <why>`; the exit status is the number of failures.
Run by tests/fake_llm_sdk.rs.
"""

import json
import math
import sys
import time

import anthropic
import openai

from sdk_harness import attempts, check, connect, fault, raises, run_checks, settled

BASE, CONTROL, KEY = sys.argv[1:4]
connect(CONTROL)


def oai(**options):
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, **options)


def ant(**options):
    options.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=BASE, api_key=KEY, **options)


def ask(text):
    return [{"role": "user", "content": text}]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@check
def openai_chat_completion():
    fault()
    raw = oai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ask("hello [fl-0000a001]")
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert "x-ratelimit-remaining-requests" in raw.headers
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


@check
def openai_stream_with_usage():
    fault()
    nonce = "fl-0000a002"
    stream = oai().chat.completions.create(
        model="gpt-4o-mini",
        messages=ask(f"hello there [{nonce}]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    # Every event the SDK yielded, plus `data: [DONE]`, which it swallows.
    [journaled] = settled(nonce)
    assert journaled.get("chunks_sent") == len(chunks) + 1, (journaled, len(chunks))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text, "streamed some content"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == math.ceil(len(text) / 4)


@check
def openai_tool_calls_plain_and_streamed():
    fault()
    client = oai()
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("What's the weather in Lyon?"), tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Lyon"}

    arguments = ""
    finish = None
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("weather in Oslo?"), tools=[WEATHER_TOOL], stream=True
    ):
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            arguments += delta_call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert json.loads(arguments) == {"city": "Oslo"}


@check
def openai_base64_embeddings():
    fault()
    # openai-python asks for base64 by default and decodes it to floats itself.
    result = oai().embeddings.create(model="text-embedding-3-small", input=["refund policy", "weather"])
    vectors = [d.embedding for d in result.data]
    assert len(vectors) == 2 and len(vectors[0]) == 256
    assert abs(math.sqrt(sum(x * x for x in vectors[0])) - 1.0) < 1e-3


@check
def openai_models_list():
    fault()
    assert "gpt-4o-mini" in [m.id for m in oai().models.list()]


@check
def openai_errors_map_to_sdk_exceptions():
    cases = [
        ({"kind": "status", "code": 400, "error_code": "context_length_exceeded"}, openai.BadRequestError, "context_length_exceeded"),
        ({"kind": "status", "code": 401}, openai.AuthenticationError, "invalid_api_key"),
        ({"kind": "status", "code": 429}, openai.RateLimitError, "rate_limit_exceeded"),
        ({"kind": "status", "code": 429, "error_code": "insufficient_quota"}, openai.RateLimitError, "insufficient_quota"),
        ({"kind": "status", "code": 500}, openai.InternalServerError, None),
        ({"kind": "status", "code": 503}, openai.InternalServerError, None),
    ]
    for rule, cls, code in cases:
        fault(rule)
        error = raises(cls, lambda: oai().chat.completions.create(model="m", messages=ask("hi")))
        assert error.status_code == rule["code"], (rule, error.status_code)
        assert error.code == code, (rule, error.code)
    fault()
    error = raises(
        openai.BadRequestError,
        lambda: oai().chat.completions.create(model="gpt-tiny-ctx", messages=ask("word " * 1000)),
    )
    assert error.code == "context_length_exceeded"
    wrong = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-wrong", max_retries=0)
    raises(openai.AuthenticationError, lambda: wrong.models.list())


@check
def openai_stream_error_frame_raises_api_error():
    fault({"kind": "malformed", "what": "error_frame"})
    stream = oai().chat.completions.create(model="m", messages=ask("hello there"), stream=True)
    raises(openai.APIError, lambda: list(stream))


@check
def openai_waits_retry_after_ms_then_retries():
    nonce = "fl-0000b001"
    fault({"kind": "status", "code": 429, "retry_after": "700ms", "first_attempts": 1})
    started = time.monotonic()
    completion = oai(max_retries=2).chat.completions.create(model="m", messages=ask(f"hi [{nonce}]"))
    elapsed = time.monotonic() - started
    assert completion.choices[0].message.content
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [429, 200], seen
    # The SDK numbers its attempts in x-stainless-retry-count; the journal keeps the number.
    assert [a.get("retry_count") for a in seen] == [0, 1], seen
    gap = seen[1]["at_ms"] - seen[0]["at_ms"]
    # The SDK waits retry-after-ms (700 ms) exactly, with no jitter; allow scheduling slack.
    assert 650 <= gap <= 2500, f"gap {gap} ms"
    assert elapsed >= 0.65


@check
def openai_obeys_x_should_retry_false():
    nonce = "fl-0000b002"
    fault({"kind": "status", "code": 503, "should_retry": False})
    raises(
        openai.InternalServerError,
        lambda: oai(max_retries=3).chat.completions.create(model="m", messages=ask(f"hi [{nonce}]")),
    )
    assert len(attempts(nonce)) == 1, attempts(nonce)


@check
def anthropic_message_and_stream():
    fault()
    raw = ant().messages.with_raw_response.create(
        model="claude-3-5-haiku-latest", max_tokens=200, messages=ask("hello there")
    )
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0

    with ant().messages.stream(
        model="claude-3-5-haiku-latest", max_tokens=200, messages=ask("hello there")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == message.content[0].text
    assert final.usage.output_tokens == math.ceil(len(text) / 4)


@check
def anthropic_errors_map_to_sdk_exceptions():
    overloaded = getattr(anthropic, "OverloadedError", anthropic.InternalServerError)
    for code, cls, kind in [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, overloaded, "overloaded_error"),
    ]:
        fault({"kind": "status", "code": code})
        error = raises(
            cls,
            lambda: ant().messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=ask("hi")),
        )
        assert error.status_code == code
        assert error.body["error"]["type"] == kind, error.body
    fault()
    wrong = anthropic.Anthropic(base_url=BASE, api_key="sk-wrong", max_retries=0)
    raises(
        anthropic.AuthenticationError,
        lambda: wrong.messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=ask("hi")),
    )


@check
def anthropic_retries_an_overload_after_retry_after_ms():
    nonce = "fl-0000b003"
    fault({"kind": "status", "code": 529, "retry_after": "400ms", "first_attempts": 1})
    message = ant(max_retries=2).messages.create(
        model="claude-3-5-haiku-latest", max_tokens=50, messages=ask(f"hi [{nonce}]")
    )
    assert message.content
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [529, 200], seen
    assert [a.get("retry_count") for a in seen] == [0, 1], seen
    assert seen[1]["at_ms"] - seen[0]["at_ms"] >= 350


if __name__ == "__main__":
    run_checks(f"openai {openai.__version__}, anthropic {anthropic.__version__}")
