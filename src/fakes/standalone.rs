//! `faultline fake <llm|mcp|redis|tool>`: one fake on a fixed loopback port, for a service started
//! by hand. Each fake's own module owns its arguments and its serving loop; this file only
//! dispatches.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum FakeCommand {
    /// The fake LLM (OpenAI chat and Responses, Anthropic, Gemini, Bedrock, Azure paths).
    Llm(super::llm::standalone::StandaloneArgs),
    /// The fake MCP tool server (Streamable HTTP at /mcp), with MCP's own faults.
    Mcp(super::mcp::standalone::StandaloneArgs),
    /// The fake Redis (RESP2/RESP3), or a fault proxy in front of a real redis-server.
    Redis(super::redis::standalone::StandaloneArgs),
    /// An HTTP tool fake (weather, tickets, or stubs from a mocks/*.toml file).
    Tool(super::tool::standalone::StandaloneArgs),
}

/// Runs one fake until Ctrl-C.
pub async fn run(command: FakeCommand) -> anyhow::Result<()> {
    match command {
        FakeCommand::Llm(args) => super::llm::standalone::run(args).await,
        FakeCommand::Mcp(args) => super::mcp::standalone::run(args).await,
        FakeCommand::Redis(args) => super::redis::standalone::run(args).await,
        FakeCommand::Tool(args) => super::tool::standalone::run(args).await,
    }
}
