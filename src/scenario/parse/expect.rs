//! The `[expect]` section: the limits and rules the checks judge the run by.

use super::*;

pub(super) fn build_expect(
    raw: Option<raw::RawExpect>,
    src: &Source,
) -> Result<Expectations, ScenarioError> {
    let mut expect = Expectations::default();
    let Some(raw) = raw else {
        return Ok(expect);
    };
    // [expect.recovery] holds the recovery phase's limits and the recovery check's settings.
    let recovery_limits = raw.recovery.as_ref().map(|r| RawPhaseLimits {
        p95: r.p95.clone(),
        error_rate: r.error_rate.clone(),
    });
    for (phase, limits) in [
        (Phase::Baseline, raw.baseline),
        (Phase::Fault, raw.fault),
        (Phase::Recovery, recovery_limits),
    ] {
        if let Some(limits) = limits {
            expect
                .phases
                .insert(phase, build_limits(limits, phase, src)?);
        }
    }
    if let Some(errors) = raw.errors {
        expect.errors = build_errors(errors, src)?;
    }
    if let Some(r) = raw.recovery {
        build_recovery(&r, &mut expect.recovery, src)?;
    }
    if let Some(r) = raw.retries {
        build_retries(&r, &mut expect.retries, src)?;
    }
    if let Some(r) = raw.writes {
        if let Some(n) = &r.max_duplicates {
            let what = "`max_duplicates` in [expect.writes]";
            expect.writes.max_duplicates =
                whole_number(n, what, 0, 1_000_000, "max_duplicates = 0", src)? as u32;
        }
    }
    if let Some(r) = raw.fallback {
        let table = "in [expect.fallback]";
        if let Some(flows) = &r.tool_flows {
            expect.fallback.tool_flows = flows.iter().map(|f| f.get_ref().clone()).collect();
        }
        if let Some(v) = &r.tool_success_rate {
            expect.fallback.tool_success_rate =
                share(v, &format!("`tool_success_rate` {table}"), "0.95", src)?;
        }
        if let Some(v) = &r.redis_success_rate {
            expect.fallback.redis_success_rate =
                share(v, &format!("`redis_success_rate` {table}"), "0.95", src)?;
        }
    }
    // Log fields, metric figures and trace attributes are service-profile keys: kept as set
    // explicitly (see scenario::profile), applied over the defaults at the end.
    let mut explicit = crate::scenario::ServiceProfile::default();
    if let Some(r) = raw.logs {
        explicit.logs = profile::expect_logs(&r, &mut expect.logs, src)?;
    }
    if let Some(r) = raw.metrics {
        explicit.metrics = profile::expect_metrics(&r, &mut expect.metrics, src)?;
    }
    if let Some(r) = raw.cost {
        if let Some(v) = &r.ratio {
            expect.cost.ratio = positive(v, "`ratio` in [expect.cost]", "ratio = 2.0", src)?;
        }
        if let Some(t) = &r.tokens_route {
            expect.cost.tokens_route = url_path(t, "`tokens_route` in [expect.cost]", src)?;
        }
    }
    if let Some(r) = raw.agent {
        if let Some(n) = &r.max_llm_calls {
            let what = "`max_llm_calls` in [expect.agent]";
            expect.agent.max_llm_calls =
                whole_number(n, what, 1, 1_000_000, "max_llm_calls = 8", src)? as u32;
        }
        if let Some(t) = &r.llm_route {
            expect.agent.llm_route = url_path(t, "`llm_route` in [expect.agent]", src)?;
        }
    }
    if let Some(r) = raw.stream {
        if let Some(t) = &r.first_token_p95 {
            expect.stream.first_token_p95 =
                positive_duration(t, "`first_token_p95` in [expect.stream]", src)?;
        }
        if let Some(t) = &r.inter_token_p95 {
            expect.stream.inter_token_p95 =
                positive_duration(t, "`inter_token_p95` in [expect.stream]", src)?;
        }
    }
    if let Some(r) = raw.traces {
        explicit.traces = profile::expect_traces(&r, &mut expect.traces, src)?;
    }
    explicit.apply(&mut expect);
    if let Some(skip) = raw.skip {
        for name in &skip {
            let family = name.get_ref().split('.').next().unwrap_or("");
            if !Expectations::FAMILIES.contains(&family) {
                let mut message = format!(
                    "`skip` in [expect] names \"{}\", which is no check; name a family ({}) or \
                     a verdict id such as \"retries.backoff\"",
                    name.get_ref(),
                    Expectations::FAMILIES.join(", ")
                );
                if let Some(close) = closest(family, Expectations::FAMILIES.into_iter()) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                }
                return Err(src.error(name, message));
            }
            expect.skip.push(name.get_ref().clone());
        }
    }
    Ok(expect)
}

pub(super) fn build_recovery(
    r: &raw::RawRecovery,
    e: &mut crate::scenario::RecoveryExpectations,
    src: &Source,
) -> Result<(), ScenarioError> {
    let what = |field: &str| format!("`{field}` in [expect.recovery]");
    if let Some(t) = &r.within {
        e.within = positive_duration(t, &what("within"), src)?;
    }
    if let Some(t) = &r.window {
        e.window = positive_duration(t, &what("window"), src)?;
    }
    if let Some(n) = &r.windows {
        e.windows = whole_number(n, &what("windows"), 1, 1000, "windows = 3", src)? as u32;
    }
    if let Some(v) = &r.success_tolerance {
        e.success_tolerance = share(v, &what("success_tolerance"), "0.05", src)?;
    }
    if let Some(v) = &r.p95_factor {
        e.p95_factor = positive(v, &what("p95_factor"), "p95_factor = 1.5", src)?;
    }
    if let Some(t) = &r.mitigate_within {
        e.mitigate_within = positive_duration(t, &what("mitigate_within"), src)?;
    }
    if let Some(t) = &r.fast_fail {
        e.fast_fail = positive_duration(t, &what("fast_fail"), src)?;
    }
    if let Some(t) = &r.long_outage {
        e.long_outage = positive_duration(t, &what("long_outage"), src)?;
    }
    Ok(())
}

pub(super) fn build_retries(
    r: &raw::RawRetries,
    e: &mut crate::scenario::RetryExpectations,
    src: &Source,
) -> Result<(), ScenarioError> {
    let what = |field: &str| format!("`{field}` in [expect.retries]");
    if let Some(n) = &r.max_attempts {
        e.max_attempts =
            whole_number(n, &what("max_attempts"), 1, 1000, "max_attempts = 4", src)? as u32;
    }
    if let Some(v) = &r.amplification {
        e.amplification = positive(v, &what("amplification"), "amplification = 3", src)?;
    }
    if let Some(v) = &r.min_growth {
        e.min_growth = positive(v, &what("min_growth"), "min_growth = 1.3", src)?;
    }
    if let Some(v) = &r.min_jitter {
        e.min_jitter = share(v, &what("min_jitter"), "0.1", src)?;
    }
    if let Some(list) = &r.non_retryable {
        e.non_retryable = status_list(list, &what("non_retryable"), src)?;
    }
    if let Some(list) = &r.retryable {
        e.retryable = status_list(list, &what("retryable"), src)?;
    }
    if let Some(v) = &r.max_unretried {
        e.max_unretried = share(v, &what("max_unretried"), "0.5", src)?;
    }
    Ok(())
}

pub(super) fn build_limits(
    raw: RawPhaseLimits,
    phase: Phase,
    src: &Source,
) -> Result<PhaseLimits, ScenarioError> {
    let table = format!("in [expect.{phase}]");
    let p95 = match &raw.p95 {
        Some(text) => Some(positive_duration(text, &format!("`p95` {table}"), src)?),
        None => None,
    };
    let error_rate = match &raw.error_rate {
        Some(rate) => {
            let value = *rate.get_ref();
            if !(0.0..=1.0).contains(&value) {
                return Err(src.error(
                    rate,
                    format!(
                        "`error_rate` {table} is {value}; it is a share of requests, from 0 to \
                         1, e.g. error_rate = 0.05"
                    ),
                ));
            }
            Some(value)
        }
        None => None,
    };
    Ok(PhaseLimits { p95, error_rate })
}

pub(super) fn build_errors(
    raw: RawErrors,
    src: &Source,
) -> Result<ErrorExpectations, ScenarioError> {
    let defaults = ErrorExpectations::default();
    let allowed_statuses = match &raw.allowed_statuses {
        Some(statuses) => statuses
            .iter()
            .map(|status| {
                let value = *status.get_ref();
                crate::input::http_status(value).ok_or_else(|| {
                    src.error(
                        status,
                        format!(
                            "`allowed_statuses` in [expect.errors] holds {value}; each must \
                                 be an HTTP status from 100 to 599, e.g. [502, 503, 504]"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => defaults.allowed_statuses,
    };
    let within = match &raw.within {
        Some(text) => positive_duration(text, "`within` in [expect.errors]", src)?,
        None => defaults.within,
    };
    Ok(ErrorExpectations {
        allowed_statuses,
        within,
        message_pointer: None,
    })
}
