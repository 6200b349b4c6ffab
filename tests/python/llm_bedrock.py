"""Conformance of the faultline fake LLM's Bedrock Runtime routes with the AWS SDK for Python
(boto3's `bedrock-runtime` client): Converse, ConverseStream (botocore decodes and checks the
binary event-stream framing, CRCs included), tool use, InvokeModel with an
Anthropic-on-Bedrock body, Bedrock's exceptions as botocore error codes, a mid-stream
exception, and the SDK's retries of a throttle timed from the journal (its
`amz-sdk-request` attempt number journaled as the retry count).

Usage: llm_bedrock.py BASE_URL CONTROL_URL API_KEY (as llm_sdk_conformance.py). Run by
tests/fake_llm_sdk.rs.
"""

import json
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from sdk_harness import attempts, check, connect, fault, raises, run_checks, settled

BASE, CONTROL, KEY = sys.argv[1:4]
connect(CONTROL)
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                },
            }
        }
    ]
}


def bedrock(retries=None):
    retries = retries or {"max_attempts": 1, "mode": "standard"}
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=BASE,
        aws_access_key_id="AKIDFAULTLINETEST",
        aws_secret_access_key="not-checked",
        config=Config(retries=retries),
    )


def ask(text):
    return [{"role": "user", "content": [{"text": text}]}]


@check
def converse_answers_with_text_and_usage():
    fault()
    nonce = "fl-0000f001"
    answer = bedrock().converse(modelId=MODEL, messages=ask(f"hello there [{nonce}]"), system=[{"text": "Be brief."}])
    assert answer["output"]["message"]["content"][0]["text"]
    assert answer["stopReason"] == "end_turn"
    usage = answer["usage"]
    assert usage["inputTokens"] > 0 and usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    [journaled] = settled(nonce)
    assert journaled["status"] == 200 and journaled.get("retry_count") == 0, journaled


@check
def converse_stream_decodes_in_botocore_with_the_same_text():
    fault()
    plain = bedrock().converse(modelId=MODEL, messages=ask("tell me about streams"))
    events = list(bedrock().converse_stream(modelId=MODEL, messages=ask("tell me about streams"))["stream"])
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"], kinds
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == plain["output"]["message"]["content"][0]["text"]
    assert events[-1]["metadata"]["usage"]["outputTokens"] == plain["usage"]["outputTokens"]


@check
def tool_use_plain_and_streamed():
    fault()
    first = bedrock().converse(modelId=MODEL, messages=ask("What is the weather in Lyon?"), toolConfig=WEATHER)
    assert first["stopReason"] == "tool_use"
    [block] = first["output"]["message"]["content"]
    use = block["toolUse"]
    assert use["name"] == "get_weather" and use["input"] == {"city": "Lyon"}, use
    answer = {"role": "user", "content": [{"toolResult": {"toolUseId": use["toolUseId"], "content": [{"json": {"temp_c": 21}}]}}]}
    second = bedrock().converse(
        modelId=MODEL,
        messages=ask("What is the weather in Lyon?") + [first["output"]["message"], answer],
        toolConfig=WEATHER,
    )
    assert second["stopReason"] == "end_turn"
    events = list(bedrock().converse_stream(modelId=MODEL, messages=ask("weather in Oslo?"), toolConfig=WEATHER)["stream"])
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    arguments = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert json.loads(arguments) == {"city": "Oslo"}


@check
def invoke_model_takes_an_anthropic_on_bedrock_body():
    fault()
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200, "messages": ask("hello there")}
    answer = bedrock().invoke_model(modelId=MODEL, body=json.dumps(body))
    message = json.loads(answer["body"].read())
    assert message["type"] == "message" and message["content"][0]["text"], message
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-output-token-count"]) == message["usage"]["output_tokens"]


@check
def exceptions_map_to_botocore_error_codes():
    for rule, code in [
        ({"kind": "status", "code": 429}, "ThrottlingException"),
        ({"kind": "status", "code": 429, "error_code": "ModelNotReadyException"}, "ModelNotReadyException"),
        ({"kind": "status", "code": 503}, "ServiceUnavailableException"),
        ({"kind": "status", "code": 500}, "InternalServerException"),
    ]:
        fault(rule)
        error = raises(ClientError, lambda: bedrock().converse(modelId=MODEL, messages=ask("hi")))
        assert error.response["Error"]["Code"] == code, error.response
        assert error.response["Error"]["Message"]


@check
def a_mid_stream_exception_raises_in_botocore():
    fault({"kind": "malformed", "what": "error_frame"})
    stream = bedrock().converse_stream(modelId=MODEL, messages=ask("tell me about streams"))["stream"]
    error = raises(EventStreamError, lambda: list(stream))
    assert error.response["Error"]["Code"] == "internalServerException", error.response


@check
def the_sdk_retries_a_throttle_and_numbers_its_attempts():
    nonce = "fl-0000f002"
    fault({"kind": "status", "code": 429, "first_attempts": 2})
    answer = bedrock({"max_attempts": 3, "mode": "standard"}).converse(modelId=MODEL, messages=ask(f"hi [{nonce}]"))
    assert answer["output"]["message"]["content"][0]["text"]
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [429, 429, 200], seen
    assert [a.get("retry_count") for a in seen] == [0, 1, 2], seen
    # botocore's standard mode: full jitter, rand(0, 1) * 2^n seconds, capped at 20 s.
    gaps = [b["at_ms"] - a["at_ms"] for a, b in zip(seen, seen[1:])]
    assert all(0 <= gap <= 3000 for gap in gaps), gaps


if __name__ == "__main__":
    run_checks(f"boto3 {boto3.__version__}, botocore {botocore.__version__}")
