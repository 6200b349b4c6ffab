//! Preflight: before any load, what each selected check needs and whether the plan provides
//! it. A check whose piece is missing is told before the run (the console, `faultline
//! validate`), and then says "not applicable" with the same reason instead of judging what it
//! cannot see (or silently passing).
//!
//! Pure, like the checks: a [`Plan`] in, a list of [`Need`]s out. Each need goes into
//! `Evidence::gaps` as one line (see [`Need::gap`]); [`blocked_reason`] reads those lines back
//! so `checks::evaluate` can turn a blocked check's verdict into "not applicable".

use crate::evidence::FlowKind;
use crate::scenario::{FakeName, Plan};

/// What separates the check ids from the reason in a blocking gap line.
const BLOCKS: &str = ": not applicable: ";
/// What separates them in a line that only narrows what a check can see.
const NARROWS: &str = ": partial: ";

/// One piece a check needs and the plan lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// The verdict ids that need it (`logs.tokens`), every one of them selected.
    pub checks: Vec<String>,
    /// What is missing, in words.
    pub missing: String,
    /// The configuration to add, with an example.
    pub fix: String,
    pub lack: Lack,
}

/// Who lacks the piece, and what that does to the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lack {
    /// The target's configuration: the checks are not applicable until it is added.
    Config,
    /// The configuration, but the checks still judge part of what they cover.
    Partial,
    /// The scenario: it has no fault or flow of the kind the checks judge (not applicable;
    /// another scenario exercises them).
    Scenario,
}

impl Lack {
    /// Heading for `faultline validate`.
    pub fn heading(self) -> &'static str {
        match self {
            Lack::Config => "not applicable unless you add what is missing",
            Lack::Partial => "judged in part",
            Lack::Scenario => "not exercised by this scenario",
        }
    }
}

impl Need {
    /// True when the checks cannot be judged at all without it.
    pub fn blocks(&self) -> bool {
        self.lack != Lack::Partial
    }

    /// The line for the console and `Evidence::gaps`:
    /// `logs.tokens: not applicable: logs not captured …; set [target] log_file …`.
    pub fn gap(&self) -> String {
        format!(
            "{}{}{}; {}",
            self.checks.join(", "),
            if self.blocks() { BLOCKS } else { NARROWS },
            self.missing,
            self.fix
        )
    }
}

/// The reason a gap line gives for check `id` not being applicable, if it names `id`.
pub fn blocked_reason<'a>(gap: &'a str, id: &str) -> Option<&'a str> {
    let (ids, reason) = gap.split_once(BLOCKS)?;
    ids.split(", ").any(|named| named == id).then_some(reason)
}

/// Every piece the plan's selected checks need and it lacks, in report order of the checks.
pub fn check(plan: &Plan) -> Vec<Need> {
    let mut needs = Vec::new();
    let mut need = |checks: &[&str], missing: String, fix: &str, lack: Lack| {
        let checks: Vec<String> = checks
            .iter()
            .filter(|id| !plan.expect.skips(id))
            .map(|id| id.to_string())
            .collect();
        if !checks.is_empty() {
            needs.push(Need {
                checks,
                missing,
                fix: fix.to_string(),
                lack,
            });
        }
    };
    let response = &plan.api.response;
    let has_flow = |kind: FlowKind| plan.load.flows.iter().any(|f| f.kind == kind);
    let faulted = |fake: FakeName| plan.faults.iter().any(|w| w.fake == fake);
    let tool_faulted = faulted(FakeName::Weather) || faulted(FakeName::Tickets);
    let reaches = |fake: FakeName| reaches(plan, fake);

    // errors.honest, logs.request_id: where answers carry the request id.
    if response.request_id_header.is_none() && response.request_id_pointer.is_none() {
        need(
            &["errors.honest"],
            "no place to read the request id from answers, so a failure counts as carrying \
             it only when its body holds the x-request-id faultline sent"
                .into(),
            "set [api] request_id_header = \"x-request-id\" or request_id_pointer = \
             \"/requestId\"",
            Lack::Partial,
        );
        need(
            &["logs.request_id"],
            "no place to read the request id from answers, so there is none to look up in the \
             logs"
                .into(),
            "set [api] request_id_header = \"x-request-id\" or request_id_pointer = \
             \"/requestId\"",
            Lack::Config,
        );
    }

    // errors.honest: where a failure's message is.
    if response.error_pointer.is_none() {
        need(
            &["errors.honest"],
            "no error message pointer, so a failure's message is looked for only at `error`, \
             `message` and `error.message`"
                .into(),
            "set [api] error_pointer = \"/error\" (where your error answers keep the message)",
            Lack::Partial,
        );
    }

    // writes.idempotent: write flows, and a target that writes through the tickets fake.
    if !has_flow(FlowKind::Write) {
        need(
            &["writes.idempotent"],
            "no write flow in [[load.flows]], so no tool write is made".into(),
            "add a flow with kind = \"write\" (and [api.write] for your write endpoint)",
            Lack::Scenario,
        );
    } else if reaches(FakeName::Tickets) == Some(false) {
        need(
            &["writes.idempotent"],
            "the target's environment does not use {tool.tickets}, so its writes never reach \
             the tickets fake"
                .into(),
            "set [target] env, e.g. TICKETS_API_URL = \"{tool.tickets}\"",
            Lack::Config,
        );
    }

    // fallback.tool: a tool outage the target can feel, and a marker for degraded answers.
    if !tool_faulted {
        need(
            &["fallback.tool"],
            "no fault window on a tool fake (weather, tickets)".into(),
            "add [[faults]] with fake = \"weather\", e.g. kind = \"status\", code = 503",
            Lack::Scenario,
        );
    } else {
        let tools = [FakeName::Weather, FakeName::Tickets];
        if tools
            .iter()
            .all(|t| !faulted(*t) || reaches(*t) == Some(false))
        {
            need(
                &["fallback.tool"],
                "the target's environment uses none of the faulted tool fakes ({tool.weather}, \
                 {tool.tickets}), so the tool outage cannot reach it"
                    .into(),
                "set [target] env, e.g. WEATHER_API_URL = \"{tool.weather}\"",
                Lack::Config,
            );
        }
        if response.degraded_pointer.is_none() {
            need(
                &["fallback.tool"],
                "no degraded marker in answers, so an answer made without the tool cannot be \
                 told from a normal one"
                    .into(),
                "set [api] degraded_pointer = \"/degraded\" (a flag, or a banner that \
                 is non-empty when degraded)",
                Lack::Config,
            );
        }
    }

    // fallback.redis: a Redis outage the target can feel; its warning needs the logs.
    if !faulted(FakeName::Redis) {
        need(
            &["fallback.redis"],
            "no fault window on the redis fake".into(),
            "add [[faults]] with fake = \"redis\", e.g. kind = \"refuse\"",
            Lack::Scenario,
        );
    } else if reaches(FakeName::Redis) == Some(false) {
        need(
            &["fallback.redis"],
            "the target's environment does not use {redis}, so a Redis fault cannot reach it"
                .into(),
            "set [target] env, e.g. REDIS_URL = \"{redis}\"",
            Lack::Config,
        );
    }

    // recovery.*, retries.*: faults the target can feel.
    if plan.faults.is_empty() {
        need(
            &["recovery.time", "recovery.mitigation", "recovery.fast_fail"],
            "no fault window, so there is nothing to recover from".into(),
            "add [[faults]], e.g. fake = \"llm\", kind = \"status\", code = 503",
            Lack::Scenario,
        );
    } else if plan.faults.iter().all(|w| reaches(w.fake) == Some(false)) {
        need(
            &[
                "retries.attempts",
                "retries.retryable",
                "retries.backoff",
                "retries.jitter",
                "retries.retry_after",
                "retries.non_retryable",
                "retries.amplification",
                "recovery.time",
                "recovery.mitigation",
                "recovery.fast_fail",
                "cost.per_answer",
            ],
            "the target's environment uses none of the faulted fakes' placeholders ({llm}, \
             {tool.weather}, {tool.tickets}, {redis}), so no fault can reach it"
                .into(),
            "set [target] env, e.g. OPENAI_BASE_URL = \"{llm}/v1\"",
            Lack::Config,
        );
    }

    // logs.*: the target's log lines, captured.
    let log_checks = [
        "logs.one_line_per_request",
        "logs.request_id",
        "logs.tokens",
    ];
    if let (Some(url), None) = (&plan.target.url, &plan.target.log_file) {
        let missing = format!(
            "logs not captured: the target at {url} was attached, not started by faultline"
        );
        let fix = "set [logs] file in faultline.toml (or [target] log_file) to the file it \
                   writes JSON lines to, e.g. file = \"/var/log/chat/app.log\"";
        need(&log_checks, missing.clone(), fix, Lack::Config);
        need(
            &["logs.no_secrets"],
            format!("{missing}, so only answers are searched for secrets"),
            fix,
            Lack::Partial,
        );
        if faulted(FakeName::Redis) {
            need(
                &["fallback.redis"],
                format!("{missing}, so the warning during the Redis outage cannot be checked"),
                fix,
                Lack::Partial,
            );
        }
    }

    // metrics.truth: an endpoint, and at least one figure to compare.
    let figures = &plan.expect.metrics;
    if plan.target.metrics_path.is_none() {
        need(
            &["metrics.truth"],
            "no metrics endpoint".into(),
            "set [metrics] path = \"/metrics\" in faultline.toml, and a selector for each \
             figure, e.g. tokens_input = 'llm_tokens_total{direction=\"input\"}'",
            Lack::Config,
        );
    } else if [
        &figures.llm_errors,
        &figures.tokens_input,
        &figures.tokens_output,
        &figures.cache_hit_ratio,
        &figures.agent_steps,
    ]
    .iter()
    .all(|pointer| pointer.is_empty())
    {
        need(
            &["metrics.truth"],
            "every metric figure is left out (\"\")".into(),
            "set one in [metrics] of faultline.toml, e.g. llm_errors = \"llm_errors_total\"",
            Lack::Config,
        );
    }

    // agent.steps, stream.*: flows of their kind.
    if !has_flow(FlowKind::Agent) {
        need(
            &["agent.steps"],
            "no agent flow in [[load.flows]]".into(),
            "add a flow with kind = \"agent\" (and [api.agent] for your agent endpoint)",
            Lack::Scenario,
        );
    }
    if !has_flow(FlowKind::Stream) {
        need(
            &[
                "stream.first_token",
                "stream.inter_token",
                "stream.ends_clearly",
            ],
            "no streaming flow in [[load.flows]]".into(),
            "add a flow with kind = \"stream\" (and [api.stream] for your streaming endpoint)",
            Lack::Scenario,
        );
    }

    // traces.per_request: spans exported to the OTLP collector fake.
    if plan.target.url.is_none() && plan.target.command.is_some() && !names(plan, "{otlp}") {
        need(
            &["traces.per_request"],
            "the target's environment does not use {otlp}, so it exports no spans to faultline"
                .into(),
            "set [target] env, e.g. OTEL_EXPORTER_OTLP_ENDPOINT = \"{otlp}\"",
            Lack::Config,
        );
    }
    needs
}

/// Whether the target's environment (or command) names `fake`'s placeholder: `None` when
/// faultline cannot know (an attached target was started by hand).
fn reaches(plan: &Plan, fake: FakeName) -> Option<bool> {
    if plan.target.url.is_some() {
        return None;
    }
    let placeholder = match fake {
        FakeName::Llm => "{llm}",
        FakeName::Weather => "{tool.weather}",
        FakeName::Tickets => "{tool.tickets}",
        FakeName::Redis => "{redis}",
        FakeName::Mcp => "{mcp}",
    };
    // The reference target gets the LLM and tool addresses by default (see run::spawn_spec);
    // Redis only when the scenario gives it REDIS_URL; it calls no MCP server.
    if plan.target.command.is_none() && !matches!(fake, FakeName::Redis | FakeName::Mcp) {
        return Some(true);
    }
    Some(names(plan, placeholder))
}

/// Whether the target's environment or command uses `placeholder`.
fn names(plan: &Plan, placeholder: &str) -> bool {
    plan.target.env.values().any(|v| v.contains(placeholder))
        || plan
            .target
            .command
            .iter()
            .flatten()
            .any(|word| word.contains(placeholder))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(needs: &[Need]) -> Vec<String> {
        needs
            .iter()
            .filter(|n| n.blocks())
            .flat_map(|n| n.checks.clone())
            .collect()
    }

    #[test]
    fn the_reference_target_lacks_nothing_its_scenario_exercises() {
        // outage: an LLM fault, chat flows, the reference target's API, logs and metrics.
        let plan = crate::scenario::load_scenario("outage").unwrap();
        let needs = check(&plan);
        let ids = blocked(&needs);
        // What it lacks is only what the scenario does not exercise, not configuration.
        for id in &ids {
            assert!(
                id.starts_with("writes.")
                    || id.starts_with("fallback.")
                    || id.starts_with("agent.")
                    || id.starts_with("stream."),
                "{id}: {needs:#?}"
            );
        }
        assert!(needs.iter().all(|n| n.lack == Lack::Scenario), "{needs:#?}");
        for id in [
            "errors.honest",
            "logs.tokens",
            "metrics.truth",
            "recovery.time",
        ] {
            assert!(!ids.iter().any(|b| b == id), "{id}");
        }
    }

    #[test]
    fn every_built_in_scenario_has_the_pieces_for_the_checks_it_is_about() {
        for (name, family) in [
            ("tool-writes", "writes.idempotent"),
            ("tool-down", "fallback.tool"),
            ("redis-down", "fallback.redis"),
            ("runaway-agent", "agent.steps"),
            ("stream-cut", "stream.first_token"),
        ] {
            let plan = crate::scenario::load_scenario(name).unwrap();
            let needs = check(&plan);
            assert!(
                !blocked(&needs).iter().any(|id| id == family),
                "{name}: {needs:#?}"
            );
        }
    }

    #[test]
    fn a_minimal_attach_config_lists_what_it_lacks_and_where_to_set_it() {
        let mut plan = crate::scenario::load_scenario("redis-down").unwrap();
        plan.target.url = Some("http://127.0.0.1:3000".into());
        plan.target.metrics_path = None;
        plan.api.response.request_id_header = None;
        plan.api.response.request_id_pointer = None;
        let needs = check(&plan);
        let lines: Vec<String> = needs.iter().map(Need::gap).collect();
        let find = |id: &str| {
            needs
                .iter()
                .find(|n| n.checks.iter().any(|c| c == id))
                .unwrap_or_else(|| panic!("{id} not listed: {lines:#?}"))
        };
        assert!(find("logs.one_line_per_request")
            .fix
            .contains("[logs] file"));
        assert_eq!(find("logs.tokens").lack, Lack::Config);
        assert_eq!(find("logs.no_secrets").lack, Lack::Partial);
        assert!(find("metrics.truth")
            .fix
            .contains("[metrics] path = \"/metrics\""));
        assert!(find("logs.request_id").missing.contains("request id"));
        let honest = find("errors.honest");
        assert!(honest.lack == Lack::Partial && honest.fix.contains("request_id_header"));
        // Attached: its environment is unknown, so Redis faults are not called unreachable.
        assert!(!needs
            .iter()
            .any(|n| n.blocks() && n.checks.iter().any(|c| c == "fallback.redis")));
        // Each gap line names the checks and says what to set.
        let line = find("metrics.truth").gap();
        assert!(line.starts_with("metrics.truth: not applicable: no metrics endpoint; set "));
        assert_eq!(
            blocked_reason(&line, "metrics.truth"),
            Some(line.split_once(BLOCKS).unwrap().1)
        );
        assert_eq!(blocked_reason(&line, "metrics"), None);
    }

    #[test]
    fn a_fault_the_target_environment_cannot_reach_blocks_the_checks_about_it() {
        let mut plan = crate::scenario::load_scenario("redis-down").unwrap();
        plan.target.env.remove("REDIS_URL");
        let needs = check(&plan);
        let redis = needs
            .iter()
            .find(|n| n.checks.iter().any(|c| c == "fallback.redis"))
            .unwrap();
        assert!(
            redis.lack == Lack::Config && redis.fix.contains("REDIS_URL = \"{redis}\""),
            "{redis:#?}"
        );

        // A command of the user's own that names no fake at all.
        let mut plan = crate::scenario::load_scenario("outage").unwrap();
        plan.target.command = Some(vec!["node".into(), "server.js".into()]);
        plan.target.env.clear();
        let ids = blocked(&check(&plan));
        assert!(ids.iter().any(|id| id == "retries.attempts"), "{ids:?}");
        assert!(ids.iter().any(|id| id == "recovery.time"), "{ids:?}");
        // Nor the OTLP collector: no spans to judge traces by.
        assert!(ids.iter().any(|id| id == "traces.per_request"), "{ids:?}");
        plan.target
            .env
            .insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), "{otlp}".into());
        let ids = blocked(&check(&plan));
        assert!(!ids.iter().any(|id| id == "traces.per_request"), "{ids:?}");
    }

    #[test]
    fn skipped_checks_are_not_listed() {
        let mut plan = crate::scenario::load_scenario("outage").unwrap();
        plan.expect.skip = vec!["stream".into(), "agent.steps".into()];
        let ids: Vec<String> = check(&plan).into_iter().flat_map(|n| n.checks).collect();
        assert!(!ids
            .iter()
            .any(|id| id.starts_with("stream.") || id == "agent.steps"));
    }
}
