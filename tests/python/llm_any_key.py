"""The official `openai` and `anthropic` SDKs against `faultline fake llm --api-key any`.

Usage: llm_any_key.py BASE_URL CONTROL_URL

Each SDK is given an arbitrary key of its own and must get real answers; a raw HTTP call with
no key at all must too. The fake's journal (read through its control API) must then class the
attempts: `other` for the SDKs' keys, `none` for the bare call, never the key itself. Each
check prints `ok <name>` or `FAIL <name>: <why>`; the exit status is the number of failures.
Run by tests/fake_llm_sdk.rs.
"""

import json
import sys
import urllib.request

import anthropic
import openai

BASE, CONTROL = sys.argv[1:3]
OPENAI_KEY = "sk-proj-some-key-the-fake-never-saw-0001"
ANTHROPIC_KEY = "sk-ant-another-arbitrary-key-0002"
failures = 0


def check(name, condition, why=""):
    global failures
    if condition:
        print(f"ok {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {why}")


def journal():
    with urllib.request.urlopen(CONTROL + "/journal/llm", timeout=10) as response:
        return json.loads(response.read())["attempts"]


def by_nonce(nonce):
    return [a for a in journal() if a.get("key") == nonce]


chat = openai.OpenAI(base_url=BASE + "/v1", api_key=OPENAI_KEY, max_retries=0)
answer = chat.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello from openai [fl-000000a1]"}],
)
check("openai chat with an arbitrary key", bool(answer.choices[0].message.content))
vectors = chat.embeddings.create(model="text-embedding-3-small", input="x [fl-000000a2]")
check("openai embeddings with an arbitrary key", len(vectors.data[0].embedding) > 0)

claude = anthropic.Anthropic(base_url=BASE, api_key=ANTHROPIC_KEY, max_retries=0)
message = claude.messages.create(
    model="claude-3-5-haiku-latest",
    max_tokens=64,
    messages=[{"role": "user", "content": "Hello from anthropic [fl-000000a3]"}],
)
check("anthropic messages with an arbitrary key", bool(message.content[0].text))

bare = urllib.request.Request(
    BASE + "/v1/chat/completions",
    data=json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "no key [fl-000000a4]"}]}
    ).encode(),
    headers={"content-type": "application/json"},
    method="POST",
)
with urllib.request.urlopen(bare, timeout=10) as response:
    check("a call with no key at all is answered", response.status == 200, response.status)

for nonce, wanted in [
    ("fl-000000a1", "other"),
    ("fl-000000a2", "other"),
    ("fl-000000a3", "other"),
    ("fl-000000a4", "none"),
]:
    seen = [a.get("api_key") for a in by_nonce(nonce)]
    check(f"the journal classes {nonce} as {wanted}", seen == [wanted], seen)

text = json.dumps(journal())
check(
    "the journal never holds a key",
    OPENAI_KEY not in text and ANTHROPIC_KEY not in text,
    "a key sent was journaled",
)
sys.exit(failures)
