"""Record and replay with the official SDKs: the same calls are made through `faultline
record` (the fake LLM as its upstream) and against `faultline fake llm --replay`, and what the
SDKs got is printed for tests/record_replay.rs to compare.

Usage:
  record_replay.py talk BASE KEY
      openai chat (plain and streamed), anthropic messages streamed, boto3 Bedrock
      converse_stream (binary event stream); prints one JSON line: each call's text, its
      streamed pieces and the gaps between them as the client saw them (ms).
  record_replay.py faults BASE KEY CONTROL
      against a replay: a 503 fault, a stream_cut and a miss, each as the SDK sees it.
"""

import json
import sys
import time

import anthropic
import boto3
import httpx
import openai
from botocore.config import Config

from sdk_harness import check, connect, fault, raises, run_checks

MODE, BASE, KEY = sys.argv[1:4]
PROMPT = [{"role": "user", "content": "hi"}]
MODEL = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-5"
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def oai():
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0, timeout=30)


def timed(pieces):
    """The pieces of a stream and the gaps (ms) between their arrivals at the client."""
    texts, arrivals = [], []
    for piece in pieces:
        if piece:
            texts.append(piece)
            arrivals.append(time.monotonic())
    gaps = [round((b - a) * 1000) for a, b in zip(arrivals, arrivals[1:])]
    return texts, gaps


def chat_stream():
    stream = oai().chat.completions.create(model=MODEL, messages=PROMPT, stream=True)
    return (c.choices[0].delta.content if c.choices else None for c in stream)


def talk():
    plain = oai().chat.completions.create(model=MODEL, messages=PROMPT)
    chat, chat_gaps = timed(chat_stream())
    claude = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=30)
    with claude.messages.stream(model=CLAUDE, max_tokens=200, messages=PROMPT) as stream:
        claude_text, claude_gaps = timed(stream.text_stream)
    bedrock = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=BASE,
        aws_access_key_id="AKIDRECORDSECRET1",
        aws_secret_access_key="not-checked",
        aws_session_token="session-token-secret-42",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    events = bedrock.converse_stream(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )["stream"]
    bedrock_text, bedrock_gaps = timed(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    print(
        json.dumps(
            {
                "plain": plain.choices[0].message.content,
                "chat": chat,
                "chat_gaps": chat_gaps,
                "anthropic": claude_text,
                "anthropic_gaps": claude_gaps,
                "bedrock": bedrock_text,
                "bedrock_gaps": bedrock_gaps,
            }
        ),
        flush=True,
    )


@check
def a_503_on_top_of_a_replay_reaches_the_sdk():
    fault({"kind": "status", "code": 503})
    error = raises(openai.InternalServerError, lambda: oai().chat.completions.create(model=MODEL, messages=PROMPT))
    assert error.status_code == 503, error


@check
def a_stream_cut_on_top_of_a_replay_breaks_the_sdks_stream_after_the_recorded_pieces():
    fault({"kind": "stream_cut", "after_chunks": 3})
    seen = []

    def read():
        for piece in chat_stream():
            seen.append(piece)

    raises(httpx.RemoteProtocolError, read)
    fault()
    whole = list(chat_stream())
    assert len(seen) == 3 and seen == whole[:3], (seen, whole)


@check
def a_request_the_recording_lacks_gets_a_404_naming_the_miss():
    fault()
    other = [{"role": "user", "content": "something never recorded"}]
    error = raises(openai.NotFoundError, lambda: oai().chat.completions.create(model=MODEL, messages=other))
    assert error.code == "replay_miss", error.body
    assert "no recorded exchange matches POST /v1/chat/completions" in str(error), error


if MODE == "talk":
    talk()
else:
    connect(sys.argv[4])
    run_checks(f"openai {openai.__version__}")
