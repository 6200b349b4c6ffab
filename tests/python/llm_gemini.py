"""Conformance of the faultline fake LLM's Gemini routes with Google's official `google-genai`
SDK: generate_content plain and streamed, function calls, embeddings, token counts, errors as
the SDK's exception classes (429 RESOURCE_EXHAUSTED with RetryInfo), a mid-stream error, and
the SDK's retries (tenacity's exponential jitter, when retry_options ask for them) timed from
the journal.

Usage: llm_gemini.py BASE_URL CONTROL_URL API_KEY (as llm_sdk_conformance.py). Run by
tests/fake_llm_sdk.rs.
"""

import sys

from google import genai
from google.genai import errors, types

from sdk_harness import attempts, check, connect, fault, raises, run_checks, settled

BASE, CONTROL, KEY = sys.argv[1:4]
connect(CONTROL)
MODEL = "gemini-2.0-flash"

WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather in a city",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        )
    ]
)
NO_AUTO_CALLS = types.AutomaticFunctionCallingConfig(disable=True)


CLIENTS = []


def client(retry=None, key=KEY):
    # Kept alive here: a Client closes its HTTP connection pool when it is collected, and a
    # call chained on a temporary one would find it closed.
    made = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=BASE, retry_options=retry))
    CLIENTS.append(made)
    return made


@check
def generate_content_answers_with_text_and_usage():
    fault()
    nonce = "fl-0000d001"
    response = client().models.generate_content(model=MODEL, contents=f"hello there [{nonce}]")
    assert response.text, response
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    [journaled] = settled(nonce)
    assert journaled["status"] == 200, journaled


@check
def a_stream_sends_the_same_text_in_chunks_with_usage_last():
    fault()
    plain = client().models.generate_content(model=MODEL, contents="tell me about streams")
    chunks = list(client().models.generate_content_stream(model=MODEL, contents="tell me about streams"))
    assert len(chunks) >= 3, chunks
    assert "".join(chunk.text or "" for chunk in chunks) == plain.text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == plain.usage_metadata.candidates_token_count


@check
def a_function_call_and_its_answer():
    fault()
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AUTO_CALLS)
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Lyon?")])
    first = client().models.generate_content(model=MODEL, contents=[question], config=config)
    [call] = first.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Lyon"}, call
    answer = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 21})],
    )
    second = client().models.generate_content(
        model=MODEL, contents=[question, first.candidates[0].content, answer], config=config
    )
    assert second.text and not second.function_calls


@check
def embeddings_and_token_counts():
    fault()
    embedded = client().models.embed_content(model="text-embedding-004", contents=["one", "two"])
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0].values) == 768
    assert embedded.embeddings[0].values != embedded.embeddings[1].values
    counted = client().models.count_tokens(model=MODEL, contents="how many tokens is this")
    assert counted.total_tokens > 0


@check
def errors_map_to_sdk_exceptions():
    fault({"kind": "status", "code": 429, "retry_after": "2s"})
    error = raises(errors.ClientError, lambda: client().models.generate_content(model=MODEL, contents="hi"))
    assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED", error.details
    [retry_info] = error.details["error"]["details"]
    assert retry_info["@type"].endswith("RetryInfo") and retry_info["retryDelay"] == "2s"
    for code in (500, 503):
        fault({"kind": "status", "code": code})
        error = raises(errors.ServerError, lambda: client().models.generate_content(model=MODEL, contents="hi"))
        assert error.code == code
    fault()
    error = raises(errors.ClientError, lambda: client(key="sk-wrong").models.generate_content(model=MODEL, contents="hi"))
    assert error.code == 400 and "API key not valid" in error.message, error.details


@check
def a_mid_stream_error_raises_in_the_sdk():
    fault({"kind": "malformed", "what": "error_frame"})
    raises(
        errors.APIError,
        lambda: list(client().models.generate_content_stream(model=MODEL, contents="tell me about streams")),
    )


@check
def the_sdk_retries_a_503_with_exponential_jitter():
    nonce = "fl-0000d002"
    fault({"kind": "status", "code": 503, "first_attempts": 2})
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.2, max_delay=2, jitter=0.1)
    response = client(retry=retry).models.generate_content(model=MODEL, contents=f"hi [{nonce}]")
    assert response.text
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [503, 503, 200], seen
    # tenacity wait_exponential_jitter: initial * 2^n plus up to `jitter` s: 0.2-0.3 s, then 0.4-0.5 s.
    gaps = [b["at_ms"] - a["at_ms"] for a, b in zip(seen, seen[1:])]
    assert 180 <= gaps[0] <= 1200 and 380 <= gaps[1] <= 1500, gaps


if __name__ == "__main__":
    run_checks(f"google-genai {genai.__version__}")
