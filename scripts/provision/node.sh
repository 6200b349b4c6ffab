# The Node side of the tests: tests/node/node_modules, installed with `npm ci` from the committed
# tests/node/package-lock.json (the official `openai` npm SDK, which tests/retry_policies_sdk.rs
# drives through the fake LLM, and @modelcontextprotocol/sdk, which tests/fake_mcp.rs drives
# against the fake MCP server). Skipped when the lock file is unchanged since the last install.
# Node.js itself comes from Debian when it is missing.
if [ -f tests/node/package-lock.json ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    stamp=tests/node/node_modules/.package-lock.sha
    wanted=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        note "npm ci in tests/node"
        (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
        echo "$wanted" > "$stamp"
    fi
fi
