"""What the SDK conformance scripts share: a registry of checks, the fake's control API
(faults on and off, its journal), and `raises`. Imported by llm_sdk_conformance.py and
llm_responses.py, which pass the control API's URL to `connect`.
"""

import json
import sys
import time
import traceback
import urllib.request

CHECKS = []
CONTROL = None
FAKE = "llm"


def connect(control_url, fake="llm"):
    """Points the helpers at a control API and the fake (`llm`, `mcp`) they switch and read."""
    global CONTROL, FAKE
    CONTROL = control_url
    FAKE = fake


def check(fn):
    CHECKS.append(fn)
    return fn


def control(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(CONTROL + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        return json.loads(text) if text else None


def fault(rule=None):
    """Switch every fault off, then `rule` on (if given)."""
    control("DELETE", "/faults")
    if rule is not None:
        control("POST", f"/faults/{FAKE}", rule)


def attempts(key):
    """The journal's attempts correlated to nonce `key`, oldest first."""
    journal = control("GET", f"/journal/{FAKE}")
    return [a for a in journal["attempts"] if a["key"] == key]


def settled(key, count=1):
    """The attempts of `key` once `count` are journaled (a stream records when its body
    ends, a moment after the client read its end); waits up to 5 s."""
    deadline = time.monotonic() + 5
    while True:
        seen = attempts(key)
        if len(seen) >= count or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def raises(cls, call):
    try:
        call()
    except cls as error:
        return error
    except Exception as error:  # noqa: BLE001 - report the wrong class precisely
        raise AssertionError(f"expected {cls.__name__}, got {type(error).__name__}: {error}")
    raise AssertionError(f"expected {cls.__name__}, got no error")


def run_checks(versions):
    """Runs every registered check, printing `ok NAME` or `FAIL NAME: why`; exits with the
    number of failures. `versions` names the SDKs in the summary line."""
    failures = 0
    for fn in CHECKS:
        try:
            fn()
            print(f"ok {fn.__name__}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            failures += 1
            print(f"FAIL {fn.__name__}: {error!r}", flush=True)
            traceback.print_exc()
    fault()
    print(f"{versions}: {len(CHECKS) - failures}/{len(CHECKS)} checks passed")
    sys.exit(failures)
