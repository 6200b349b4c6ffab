// Conformance of faultline's fake MCP server with the official TypeScript SDK,
// @modelcontextprotocol/sdk: its Streamable HTTP client transport, tools/list, tools/call, a
// tool_error result, a JSON-RPC error, and the list_changed notification of tools_changed.
//
// Usage: node mcp_client.mjs MCP_URL CONTROL_URL. Run by tests/fake_mcp.rs. Prints `ok NAME`
// or `FAIL NAME: why` per check; exits with the number of failures.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, control] = process.argv.slice(2);

async function fault(rule) {
  await fetch(`${control}/faults`, { method: "DELETE" });
  if (rule) {
    const answer = await fetch(`${control}/faults/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(rule),
    });
    if (!answer.ok) throw new Error(`control API: ${answer.status} ${await answer.text()}`);
  }
}

async function connected(onListChanged) {
  const client = new Client({ name: "faultline-test", version: "0.0.0" });
  if (onListChanged) client.setNotificationHandler(ToolListChangedNotificationSchema, onListChanged);
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  await client.ping();
  return client;
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const checks = {
  async lists_and_calls_tools() {
    await fault();
    const client = await connected();
    const { tools } = await client.listTools();
    assert(tools.map((t) => t.name).join() === "get_weather,search_docs,create_ticket", JSON.stringify(tools));
    const result = await client.callTool({ name: "get_weather", arguments: { city: "Lyon" } });
    assert(!result.isError && result.content[0].text.includes("temp_c"), JSON.stringify(result));
    await client.close();
  },
  async a_tool_error_is_an_is_error_result() {
    await fault();
    const client = await connected();
    await fault({ kind: "tool_error" });
    const result = await client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
    assert(result.isError === true, JSON.stringify(result));
    await fault();
    await client.close();
  },
  async an_rpc_error_rejects_the_call() {
    await fault();
    const client = await connected();
    await fault({ kind: "rpc_error", code: -32000, message: "backend exploded" });
    let error;
    try {
      await client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
    } catch (e) {
      error = e;
    }
    await fault();
    assert(error && error.code === -32000 && error.message.includes("backend exploded"), String(error));
    await client.close();
  },
  async tools_changed_notifies_and_the_old_tool_is_gone() {
    await fault();
    let notices = 0;
    const client = await connected(async () => {
      notices += 1;
    });
    await fault({ kind: "tools_changed" });
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert(names.includes("get_forecast") && !names.includes("get_weather"), names.join());
    assert(notices === 1, `list_changed seen ${notices} times`);
    let error;
    try {
      await client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
    } catch (e) {
      error = e;
    }
    await fault();
    assert(error && String(error.message).includes("Unknown tool: get_weather"), String(error));
    await client.close();
  },
};

let failures = 0;
for (const [name, check] of Object.entries(checks)) {
  try {
    await check();
    console.log(`ok ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${name}: ${error?.stack ?? error}`);
  }
}
await fault();
console.log(`@modelcontextprotocol/sdk: ${Object.keys(checks).length - failures}/${Object.keys(checks).length} checks passed`);
process.exit(failures);
