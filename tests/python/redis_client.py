"""redis-py against the fake Redis, as an application would use it.

Usage: redis_client.py FAKE_URL CLOSED_URL

The Rust test (tests/fake_redis.rs) starts the fake with two fault rules: LPUSH answers
-LOADING, LLEN hangs. CLOSED_URL is a port nothing listens on. Every check must pass; the last
line printed is "all redis-py checks passed".
"""

import sys
import time

import redis

fake_url, closed_url = sys.argv[1], sys.argv[2]


def check(label, condition):
    if not condition:
        raise SystemExit(f"FAILED: {label}")
    print(f"ok: {label}")


for protocol in (2, 3):
    r = redis.Redis.from_url(fake_url, protocol=protocol, socket_timeout=0.5, decode_responses=True)
    prefix = f"resp{protocol}"
    check(f"{prefix} ping", r.ping() is True)
    check(f"{prefix} set with ttl", r.set(f"{prefix}:answer", "42", ex=100) is True)
    check(f"{prefix} get", r.get(f"{prefix}:answer") == "42")
    check(f"{prefix} ttl", r.ttl(f"{prefix}:answer") == 100)
    check(f"{prefix} miss", r.get(f"{prefix}:missing") is None)
    r.set(f"{prefix}:short", "v", px=100)
    time.sleep(0.25)
    check(f"{prefix} expired", r.get(f"{prefix}:short") is None)
    check(f"{prefix} hset", r.hset(f"{prefix}:session", mapping={"user": "ada", "turns": "3"}) == 2)
    check(f"{prefix} hgetall", r.hgetall(f"{prefix}:session") == {"user": "ada", "turns": "3"})
    check(f"{prefix} incr", r.incr(f"{prefix}:count") == 1)
    try:
        r.get(f"{prefix}:session")
        check(f"{prefix} wrongtype raises", False)
    except redis.exceptions.ResponseError as error:
        check(f"{prefix} wrongtype raises ResponseError", str(error).startswith("WRONGTYPE"))
    try:
        r.lpush(f"{prefix}:list", "x")
        check(f"{prefix} loading raises", False)
    except redis.exceptions.BusyLoadingError:
        check(f"{prefix} loading raises BusyLoadingError", True)
    pipe = r.pipeline(transaction=False)
    pipe.set(f"{prefix}:p", "1").incr(f"{prefix}:p").get(f"{prefix}:p")
    check(f"{prefix} pipeline", pipe.execute() == [True, 2, "2"])

hung = redis.Redis.from_url(fake_url, socket_timeout=0.5)
try:
    hung.execute_command("LLEN", "anything")
    check("hang raises", False)
except redis.exceptions.TimeoutError:
    check("hang raises TimeoutError", True)

refused = redis.Redis.from_url(closed_url, socket_connect_timeout=1)
try:
    refused.ping()
    check("refused raises", False)
except redis.exceptions.ConnectionError as error:
    check("refused raises ConnectionError", "refused" in str(error).lower())

print("all redis-py checks passed")
