"""The official Python SDKs' own retries against the faultline fake LLM, for the retries.* checks.

Usage: retry_policies.py BASE_URL CONTROL_URL API_KEY SDK

SDK is `openai` or `anthropic` (each case uses its default client and retry settings), or
`openai-flawed` (the openai SDK made into a flawed policy: max_retries=0, or max_retries=0
under a hand-written loop that sleeps a fixed 0.5 s or not at all). For each case the script
switches one fault on through the control API, makes its calls at once from threads, and
prints one JSON line, `{"case": NAME, "keys": [nonce, ...]}`: tests/retry_policies_sdk.rs
reads the fake's journal for those nonces and judges the real waits with the real checks.
"""

import json
import secrets
import sys
import threading
import time
import urllib.request

import anthropic
import openai

BASE, CONTROL, KEY, SDK = sys.argv[1:5]


def control(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(CONTROL + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        return json.loads(text) if text else None


def nonce():
    """A correlation key the fake finds in the prompt (`fl-` and 8 hex digits)."""
    return "fl-" + secrets.token_hex(4)


def ask_openai(client, key):
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"What plans do you offer? {key}"}],
    )


def ask_anthropic(client, key):
    client.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=64,
        messages=[{"role": "user", "content": f"What plans do you offer? {key}"}],
    )


def by_hand(client, key, sleep):
    """A hand-written retry loop around an SDK that does not retry: 3 attempts."""
    for attempt in range(3):
        try:
            return ask_openai(client, key)
        except openai.APIStatusError:
            if attempt == 2:
                raise
            if sleep:
                time.sleep(sleep)


def case(name, rule, calls, call, stagger=0.0):
    """Switch `rule` on, make `calls` calls with `call(key)`, all at once or `stagger` seconds
    apart, and print the keys used."""
    control("DELETE", "/faults")
    control("POST", "/faults/llm", rule)
    keys = [nonce() for _ in range(calls)]
    errors = []

    def run(key):
        try:
            call(key)
        except (openai.APIError, anthropic.APIError) as e:
            errors.append(type(e).__name__)

    threads = [threading.Thread(target=run, args=(key,)) for key in keys]
    for t in threads:
        t.start()
        time.sleep(stagger)
    for t in threads:
        t.join()
    control("DELETE", "/faults")
    print(json.dumps({"case": name, "keys": keys, "errors": errors}), flush=True)


FAIL_TWICE = {"kind": "status", "code": 503, "first_attempts": 2}
FAIL_ONCE = {"kind": "status", "code": 503, "first_attempts": 1}
RATE_LIMITED = {"kind": "status", "code": 429, "retry_after": "1s", "first_attempts": 1}
REJECTED = {"kind": "status", "code": 400, "first_attempts": 1}

if SDK in ("openai", "anthropic"):
    if SDK == "openai":
        client = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY)
        ask = ask_openai
    else:
        client = anthropic.Anthropic(base_url=BASE, api_key=KEY)
        ask = ask_anthropic
    case("fail-twice", FAIL_TWICE, 8, lambda key: ask(client, key))
    case("rate-limited", RATE_LIMITED, 3, lambda key: ask(client, key))
    case("rejected", REJECTED, 2, lambda key: ask(client, key))
elif SDK == "openai-flawed":
    bare = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
    # Staggered, so that what is measured is each loop's own timing, not threads of this one
    # process queueing for its interpreter lock after failing together.
    case("no-retries", FAIL_ONCE, 6, lambda key: ask_openai(bare, key))
    case("fixed", FAIL_TWICE, 6, lambda key: by_hand(bare, key, 0.5), stagger=0.05)
    case("immediate", FAIL_TWICE, 6, lambda key: by_hand(bare, key, 0), stagger=0.05)
else:
    sys.exit(f"unknown SDK {SDK!r}: openai, anthropic or openai-flawed")
