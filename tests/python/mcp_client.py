"""Conformance of faultline's fake MCP server with the official `mcp` Python SDK's Streamable
HTTP client: initialize and its session, tools/list, tools/call, and each MCP fault as the SDK
sees it (a JSON-RPC error, an isError result, an expired session, a changed tool list with its
list_changed notification, a large result, a hang cut by the client's timeout).

Usage: mcp_client.py MCP_URL CONTROL_URL. Run by tests/fake_mcp.rs.
"""

import asyncio
import sys
from datetime import timedelta

import mcp
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

from sdk_harness import attempts, check, connect, fault, run_checks

URL, CONTROL = sys.argv[1:3]
connect(CONTROL, fake="mcp")


def run(coroutine):
    return asyncio.run(coroutine)


async def session_do(work, on_message=None, timeout=10):
    async with streamablehttp_client(URL, timeout=timeout) as (read, write, _):
        async with ClientSession(read, write, message_handler=on_message,
                                 read_timeout_seconds=timedelta(seconds=timeout)) as session:
            await session.initialize()
            # A round trip, so the client's `notifications/initialized` has been answered
            # before a check switches a fault on (the client posts one message at a time).
            await session.send_ping()
            return await work(session)


@check
def initialize_list_and_call():
    fault()

    async def work(session):
        tools = await session.list_tools()
        names = [tool.name for tool in tools.tools]
        assert names == ["get_weather", "search_docs", "create_ticket"], names
        assert tools.tools[0].inputSchema["required"] == ["city"]
        result = await session.call_tool("get_weather", {"city": "Lyon [fl-0000a101]"})
        assert not result.isError and '"temp_c"' in result.content[0].text, result
        again = await session.call_tool("get_weather", {"city": "Lyon [fl-0000a101]"})
        assert again.content[0].text == result.content[0].text
        await session.send_ping()
        return True

    assert run(session_do(work))
    seen = attempts("fl-0000a101")
    assert [a["status"] for a in seen] == [200, 200], seen


@check
def a_missing_argument_is_a_json_rpc_error():
    fault()

    async def work(session):
        try:
            await session.call_tool("get_weather", {})
        except McpError as error:
            return error.error
        return None

    error = run(session_do(work))
    # Newer SDKs may validate the arguments themselves and answer with an isError result.
    assert error is not None and error.code == -32602 and "city" in error.message, error


@check
def rpc_error_reaches_the_sdk_as_mcp_error():
    fault()

    async def work(session):
        fault({"kind": "rpc_error", "code": -32000, "message": "backend exploded"})
        try:
            await session.call_tool("search_docs", {"query": "x"})
        except McpError as error:
            return error.error

    error = run(session_do(work))
    assert error.code == -32000 and error.message == "backend exploded", error


@check
def tool_error_is_an_is_error_result():
    fault()

    async def work(session):
        fault({"kind": "tool_error"})
        return await session.call_tool("get_weather", {"city": "Oslo"})

    result = run(session_do(work))
    assert result.isError and "unavailable" in result.content[0].text, result


@check
def an_expired_session_is_a_404_the_client_sees():
    fault()

    async def work(session):
        fault({"kind": "session_expired"})
        try:
            await session.call_tool("get_weather", {"city": "Oslo"})
        except Exception as error:  # noqa: BLE001 - the SDK's type for this differs by version
            return error
        return None

    error = run(session_do(work, timeout=5))
    assert error is not None, "a call on an expired session must fail"


@check
def a_changed_tool_list_is_announced_and_the_old_tool_is_gone():
    fault()
    notices = []

    async def on_message(message):
        if isinstance(message, mcp.types.ServerNotification):
            notices.append(message.root.method)

    async def work(session):
        before = [t.name for t in (await session.list_tools()).tools]
        fault({"kind": "tools_changed"})
        after = [t.name for t in (await session.list_tools()).tools]
        try:
            await session.call_tool("get_weather", {"city": "Oslo"})
            old = "answered"
        except McpError as error:
            old = error.error.message
        return before, after, old

    before, after, old = run(session_do(work, on_message=on_message))
    assert "get_weather" in before and "get_forecast" in after and "get_weather" not in after, after
    assert old == "Unknown tool: get_weather", old
    assert notices.count("notifications/tools/list_changed") == 1, notices


@check
def a_large_result_arrives_whole():
    fault()

    async def work(session):
        fault({"kind": "large_result", "bytes": 2000000})
        return await session.call_tool("search_docs", {"query": "everything"})

    result = run(session_do(work))
    assert len(result.content[0].text) == 2000000


@check
def a_hang_is_cut_by_the_clients_timeout():
    fault()

    async def work(session):
        fault({"kind": "hang"})
        try:
            await session.call_tool("get_weather", {"city": "Oslo"}, read_timeout_seconds=timedelta(seconds=1))
        except McpError as error:
            return error.error.message
        finally:
            # Off before the session closes, or its DELETE would hang too.
            fault()
        return "answered"

    message = run(session_do(work))
    assert "Timed out" in message or "timed out" in message.lower(), message


@check
def a_slow_stream_answer_arrives_late_as_server_sent_events():
    fault()

    async def work(session):
        fault({"kind": "slow_stream", "first_token": "700ms", "inter_token": "10ms"})
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await session.call_tool("get_weather", {"city": "Oslo"})
        return result, loop.time() - started

    result, elapsed = run(session_do(work))
    assert not result.isError and elapsed >= 0.65, elapsed


if __name__ == "__main__":
    import importlib.metadata

    run_checks(f"mcp {importlib.metadata.version('mcp')}")
