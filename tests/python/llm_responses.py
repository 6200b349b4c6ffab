"""Conformance of the faultline fake LLM's Responses API (`POST /v1/responses`) with the
official `openai` SDK: plain and streamed responses, the semantic events in order, function
calls over `previous_response_id`, the API's 400s for unknown conversation state, errors as
the SDK's exception classes, a mid-stream error event, and the SDK's retries timed from the
journal.

Usage: llm_responses.py BASE_URL CONTROL_URL API_KEY (as llm_sdk_conformance.py). Run by
tests/fake_llm_responses.rs.
"""

import json
import sys

import openai

from sdk_harness import attempts, check, connect, fault, raises, run_checks, settled

BASE, CONTROL, KEY = sys.argv[1:4]
connect(CONTROL)
MODEL = "gpt-4o-mini"

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def oai(**options):
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, **options)


@check
def a_response_answers_with_output_text_and_usage():
    fault()
    nonce = "fl-0000c001"
    raw = oai().responses.with_raw_response.create(
        model=MODEL, instructions="Be brief.", input=f"hello there [{nonce}]"
    )
    assert raw.headers["x-request-id"].startswith("req_")
    response = raw.parse()
    assert response.id.startswith("resp_"), response.id
    assert response.object == "response" and response.status == "completed"
    assert response.output[0].type == "message"
    assert response.output_text, response
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    [journaled] = settled(nonce)
    assert journaled["status"] == 200, journaled


@check
def a_streamed_response_sends_the_semantic_events_in_order():
    fault()
    plain = oai().responses.create(model=MODEL, input="tell me about streams")
    events = list(oai().responses.create(model=MODEL, input="tell me about streams", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ], kinds
    assert kinds[-1] == "response.completed", kinds
    assert kinds.count("response.output_text.delta") >= 2, kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == plain.output_text
    assert events[-1].response.usage.output_tokens == plain.usage.output_tokens

    # The SDK's own stream helper accumulates the same events into the final response.
    with oai().responses.stream(model=MODEL, input="tell me about streams") as stream:
        final = stream.get_final_response()
    assert final.output_text == plain.output_text


@check
def a_function_call_continues_over_previous_response_id():
    fault()
    first = oai().responses.create(model=MODEL, input="What is the weather in Lyon?", tools=[WEATHER_TOOL])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    assert json.loads(call.arguments) == {"city": "Lyon"}
    second = oai().responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text and second.previous_response_id == first.id

    # Stateless: the call itself travels in the input instead.
    third = oai().responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "What is the weather in Lyon?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert third.output_text


@check
def a_streamed_function_call_sends_its_arguments_in_deltas():
    fault()
    events = list(
        oai().responses.create(model=MODEL, input="weather in Oslo?", tools=[WEATHER_TOOL], stream=True)
    )
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds, kinds
    assert "response.function_call_arguments.done" in kinds, kinds
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Oslo"}
    [call] = events[-1].response.output
    assert call.type == "function_call" and call.arguments == arguments


@check
def unknown_conversation_state_is_refused_as_the_api_does():
    fault()
    error = raises(
        openai.BadRequestError,
        lambda: oai().responses.create(model=MODEL, previous_response_id="resp_made_up", input="hi"),
    )
    assert error.code == "previous_response_not_found", error.body
    assert error.param == "previous_response_id"
    error = raises(
        openai.BadRequestError,
        lambda: oai().responses.create(
            model=MODEL, input=[{"type": "function_call_output", "call_id": "call_nobody_made", "output": "{}"}]
        ),
    )
    assert "call_nobody_made" in error.message


@check
def errors_map_to_sdk_exceptions():
    for code, cls in [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ]:
        fault({"kind": "status", "code": code})
        error = raises(cls, lambda: oai().responses.create(model=MODEL, input="hi"))
        assert error.status_code == code
        assert error.body["message"], error.body


@check
def a_mid_stream_error_event_ends_the_stream_without_completed():
    fault({"kind": "malformed", "what": "error_frame"})
    events = list(oai().responses.create(model=MODEL, input="tell me about streams", stream=True))
    kinds = [event.type for event in events]
    assert kinds[-1] == "error" and "response.completed" not in kinds, kinds
    assert events[-1].code == "server_error"
    with oai().responses.stream(model=MODEL, input="tell me about streams") as stream:
        raises(RuntimeError, stream.get_final_response)


@check
def a_cut_stream_raises_in_the_sdk():
    fault({"kind": "stream_cut", "after_chunks": 3})
    raises(Exception, lambda: list(oai().responses.create(model=MODEL, input="tell me about streams", stream=True)))


@check
def the_sdk_retries_a_429_after_retry_after_ms():
    nonce = "fl-0000c002"
    fault({"kind": "status", "code": 429, "retry_after": "600ms", "first_attempts": 1})
    response = oai(max_retries=2).responses.create(model=MODEL, input=f"hi [{nonce}]")
    assert response.output_text
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [429, 200], seen
    assert [a.get("retry_count") for a in seen] == [0, 1], seen
    gap = seen[1]["at_ms"] - seen[0]["at_ms"]
    assert 550 <= gap <= 2500, f"gap {gap} ms"


@check
def the_sdk_retries_a_503_with_its_own_backoff():
    nonce = "fl-0000c003"
    fault({"kind": "status", "code": 503, "first_attempts": 2})
    response = oai(max_retries=2).responses.create(model=MODEL, input=f"hi [{nonce}]")
    assert response.output_text
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [503, 503, 200], seen
    # openai-python: 0.5 s * 2^n, minus up to 25% jitter: 375-500 ms, then 750-1000 ms.
    gaps = [b["at_ms"] - a["at_ms"] for a, b in zip(seen, seen[1:])]
    assert 350 <= gaps[0] <= 1500 and 700 <= gaps[1] <= 2500, gaps


if __name__ == "__main__":
    run_checks(f"openai {openai.__version__} (Responses API)")
