//! The `[[faults]]` section: each fault window, its kind and the kind's settings.

use super::*;
use crate::fakes::fault::kinds;

pub(super) fn build_fault(
    raw: RawFault,
    number: usize,
    run_time: Duration,
    src: &Source,
) -> Result<FaultWindow, ScenarioError> {
    let table = format!("in [[faults]] #{number}");

    let fake = FakeName::ALL
        .into_iter()
        .find(|f| f.as_str() == raw.fake.get_ref())
        .ok_or_else(|| {
            let names: Vec<&str> = FakeName::ALL.iter().map(|f| f.as_str()).collect();
            src.error(
                &raw.fake,
                format!(
                    "unknown fake `{}` {table}; expected one of {}",
                    raw.fake.get_ref(),
                    names.join(", ")
                ),
            )
        })?;

    let route = match &raw.route {
        // Redis has commands where HTTP fakes have routes: `route = "GET"`.
        Some(route) if fake == FakeName::Redis => Some(redis_command(route, &table, src)?),
        Some(route) => Some(url_path(route, &format!("`route` {table}"), src)?),
        None => None,
    };

    let start = duration(&raw.start, &format!("`start` {table}"), src)?;
    let end = duration(&raw.end, &format!("`end` {table}"), src)?;
    if end <= start {
        return Err(src.error(
            &raw.end,
            format!(
                "`end` {table} ({}) must be after `start` ({}); the window would be empty",
                raw.end.get_ref(),
                raw.start.get_ref()
            ),
        ));
    }
    if end > run_time {
        return Err(src.error(
            &raw.end,
            format!(
                "`end` {table} ({}) is after the run ends (load duration {}); end the fault \
                 earlier or make [load] duration longer",
                raw.end.get_ref(),
                humantime::format_duration(run_time)
            ),
        ));
    }

    let rate = match &raw.rate {
        Some(rate) => {
            let value = *rate.get_ref();
            if !(value > 0.0 && value <= 1.0) {
                return Err(src.error(
                    rate,
                    format!(
                        "`rate` {table} is {value}; it must be more than 0 and at most 1, \
                         e.g. rate = 0.5"
                    ),
                ));
            }
            value
        }
        None => 1.0,
    };

    let first_attempts = match &raw.first_attempts {
        Some(n) => Some(whole_number(
            n,
            &format!("`first_attempts` {table}"),
            1,
            1000,
            "first_attempts = 1",
            src,
        )? as u32),
        None => None,
    };

    let kind = raw.kind.get_ref().as_str();
    let Some((required, optional)) = kind_settings(kind) else {
        let mut message = format!(
            "unknown fault kind `{kind}` {table}; expected one of {}",
            kinds::names().join(", ")
        );
        if let Some(close) = closest(kind, kinds::names().into_iter()) {
            message.push_str(&format!("; did you mean `{close}`?"));
        }
        return Err(src.error(&raw.kind, message));
    };
    // The table names every fake a kind can work on (some, such as MCP's, scenarios do not
    // start); refusing here says so before its settings are read.
    let works_on = kinds::spec(kind).map_or(&[][..], |spec| spec.fakes);
    if !works_on.contains(&fake.category()) {
        return Err(src.error(
            &raw.kind,
            format!(
                "kind = \"{kind}\" {table} cannot be acted out by fake `{}`; it works on: {}",
                fake.as_str(),
                works_on.join(", ")
            ),
        ));
    }
    // Each kind reads its own settings; any other one given is a mistake worth reporting.
    for (field, at) in raw.kind_fields() {
        if !required.contains(&field) && !optional.contains(&field) {
            let takes: Vec<String> = required
                .iter()
                .chain(optional)
                .map(|f| format!("`{f}`"))
                .collect();
            let takes = if takes.is_empty() {
                "no settings".to_string()
            } else {
                takes.join(", ")
            };
            return Err(src.error_at(
                at,
                format!(
                    "`{field}` {table} is not a setting of kind = \"{kind}\", which takes \
                     {takes}; remove `{field}` or change `kind`"
                ),
            ));
        }
    }
    let given: Vec<&str> = raw.kind_fields().iter().map(|(field, _)| *field).collect();
    if let Some(missing) = required.iter().find(|field| !given.contains(field)) {
        return Err(src.error(
            &raw.kind,
            format!(
                "kind = \"{kind}\" {table} needs `{missing}`; add e.g. {}",
                kinds::example_setting(missing)
            ),
        ));
    }
    if kind == "refuse" {
        // A refuse closes the fake's whole port whenever it is on (see fakes::fault), so a
        // route, a rate or a per-request count would be silently ignored: say so instead.
        let scoped = [
            ("route", raw.route.as_ref().map(|r| r.span())),
            ("rate", raw.rate.as_ref().map(|r| r.span())),
            (
                "first_attempts",
                raw.first_attempts.as_ref().map(|r| r.span()),
            ),
        ];
        for (field, span) in scoped {
            if let Some(span) = span {
                return Err(src.error_at(
                    span.start,
                    format!(
                        "`{field}` {table} does not apply to kind = \"refuse\", which closes \
                         the fake's port for every route and request; remove `{field}`"
                    ),
                ));
            }
        }
    }

    let fault = build_fault_kind(kind, &raw, &table, src)?;
    // The rules the control API applies too; build_fault_kind has said most of them at the
    // setting's own line, this is the backstop that keeps the two parsers alike.
    kinds::check(&fault).map_err(|why| src.error(&raw.kind, format!("{why} {table}")))?;
    if !fault.supported_by().contains(&fake.category()) {
        return Err(src.error(
            &raw.kind,
            format!(
                "kind = \"{kind}\" {table} cannot be acted out by fake `{}`; it works on: {}",
                fake.as_str(),
                fault.supported_by().join(", ")
            ),
        ));
    }

    Ok(FaultWindow {
        fake,
        route,
        start,
        end,
        rate,
        first_attempts,
        fault,
    })
}

/// The settings `kind` requires and those it may take, from the table of kinds.
pub(super) fn kind_settings(
    kind: &str,
) -> Option<(&'static [&'static str], &'static [&'static str])> {
    kinds::spec(kind).map(|spec| (spec.required, spec.optional))
}

/// The fault a `[[faults]]` table describes, its settings already checked against its kind.
pub(super) fn build_fault_kind(
    kind: &str,
    raw: &RawFault,
    table: &str,
    src: &Source,
) -> Result<Fault, ScenarioError> {
    let what = |field: &str| format!("`{field}` {table}");
    let opt_dur = |field: &Option<Text>, name: &str| -> Result<Option<Duration>, ScenarioError> {
        field
            .as_ref()
            .map(|t| duration(t, &what(name), src))
            .transpose()
    };
    let pos_dur = |field: &Option<Text>, name: &str| -> Result<Duration, ScenarioError> {
        // Required settings were checked above, so `field` is present here.
        match field {
            Some(t) => positive_duration(t, &what(name), src),
            None => Err(src.error(&raw.kind, format!("{} is missing", what(name)))),
        }
    };
    let choice =
        |field: &Option<Text>, name: &str, choices: &[&str]| -> Result<String, ScenarioError> {
            let Some(t) = field else {
                return Err(src.error(&raw.kind, format!("{} is missing", what(name))));
            };
            if choices.contains(&t.get_ref().as_str()) {
                Ok(t.get_ref().clone())
            } else {
                Err(src.error(
                    t,
                    format!(
                        "{} is \"{}\"; expected one of {}",
                        what(name),
                        t.get_ref(),
                        choices.join(", ")
                    ),
                ))
            }
        };
    let plain = |name: &str| -> serde_json::Value { serde_json::Value::String(name.to_string()) };
    Ok(match kind {
        "refuse" => Fault::Refuse,
        "hang" => Fault::Hang,
        "reset" => Fault::Reset,
        "drop" => Fault::Drop,
        "tool_loop" => Fault::ToolLoop,
        "invalid_tool_args" => Fault::InvalidToolArgs,
        "tool_error" => Fault::ToolError,
        "session_expired" => Fault::SessionExpired,
        "tools_changed" => Fault::ToolsChanged,
        "rpc_error" => Fault::RpcError {
            code: raw.code.as_ref().map(|code| *code.get_ref()),
            message: raw.message.as_ref().map(|m| m.get_ref().clone()),
        },
        "large_result" => {
            let bytes = match &raw.bytes {
                None => None,
                // Up to 256 MiB: past that the fake itself would be the bottleneck.
                Some(b) if (1..=256 * 1024 * 1024).contains(b.get_ref()) => {
                    Some(*b.get_ref() as u64)
                }
                Some(b) => {
                    return Err(src.error(
                        b,
                        format!(
                            "{} is {}; give a size in bytes from 1 to 268435456, e.g. bytes = \
                             4194304",
                            what("bytes"),
                            b.get_ref()
                        ),
                    ))
                }
            };
            Fault::LargeResult { bytes }
        }
        "status" => {
            let code = raw.code.as_ref().expect("required setting checked above");
            let code = whole_number(code, &what("code"), 100, 599, "code = 503", src)? as u16;
            Fault::Status {
                code,
                retry_after: opt_dur(&raw.retry_after, "retry_after")?,
                retry_after_ms: raw.retry_after_ms.as_ref().is_none_or(|b| *b.get_ref()),
                should_retry: raw.should_retry.as_ref().map(|b| *b.get_ref()),
                error_code: raw.error_code.as_ref().map(|t| t.get_ref().clone()),
            }
        }
        "delay" => {
            let distribution = match &raw.distribution {
                Some(_) => {
                    let name = choice(
                        &raw.distribution,
                        "distribution",
                        &["fixed", "uniform", "log_normal"],
                    )?;
                    serde_json::from_value(plain(&name)).expect("checked against the names above")
                }
                None => Default::default(),
            };
            Fault::Delay {
                delay: pos_dur(&raw.delay, "delay")?,
                distribution,
            }
        }
        "slow_stream" => {
            let jitter = match &raw.jitter {
                Some(j) if !(0.0..=1.0).contains(j.get_ref()) => {
                    return Err(src.error(
                        j,
                        format!(
                            "{} is {}; it must be from 0 to 1, e.g. jitter = 0.2",
                            what("jitter"),
                            j.get_ref()
                        ),
                    ))
                }
                Some(j) => *j.get_ref(),
                None => 0.0,
            };
            Fault::SlowStream {
                first_token: duration(
                    raw.first_token.as_ref().expect("required"),
                    &what("first_token"),
                    src,
                )?,
                inter_token: duration(
                    raw.inter_token.as_ref().expect("required"),
                    &what("inter_token"),
                    src,
                )?,
                jitter,
            }
        }
        "stall" => Fault::Stall {
            after_chunks: whole_number(
                raw.after_chunks.as_ref().expect("required"),
                &what("after_chunks"),
                0,
                100_000,
                "after_chunks = 5",
                src,
            )? as u32,
            stall: pos_dur(&raw.stall, "stall")?,
        },
        "stream_cut" => {
            let after_chunks = match &raw.after_chunks {
                Some(n) => Some(whole_number(
                    n,
                    &what("after_chunks"),
                    0,
                    100_000,
                    "after_chunks = 5",
                    src,
                )? as u32),
                None => None,
            };
            let after = opt_dur(&raw.after, "after")?;
            if after_chunks.is_none() && after.is_none() {
                return Err(src.error(
                    &raw.kind,
                    format!(
                        "kind = \"stream_cut\" {table} needs `after_chunks` or `after` (when to \
                         cut the stream); add e.g. after_chunks = 5"
                    ),
                ));
            }
            Fault::StreamCut {
                after_chunks,
                after,
            }
        }
        "malformed" => {
            let names = [
                "invalid_json",
                "truncated_json",
                "wrong_content_type",
                "empty_choices",
                "error_frame",
                "no_done",
                "no_usage",
            ];
            let name = choice(&raw.what, "what", &names)?;
            Fault::Malformed {
                what: serde_json::from_value(plain(&name))
                    .expect("checked against the names above"),
            }
        }
        "finish_reason" => {
            let name = choice(&raw.reason, "reason", &["length", "content_filter"])?;
            Fault::FinishReason {
                reason: serde_json::from_value(plain(&name))
                    .expect("checked against the names above"),
            }
        }
        "rate_limit" => {
            let per_minute =
                |field: &Option<Spanned<i64>>, name: &str| -> Result<Option<u32>, ScenarioError> {
                    field
                        .as_ref()
                        .map(|n| {
                            whole_number(
                                n,
                                &what(name),
                                1,
                                100_000_000,
                                "requests_per_minute = 60",
                                src,
                            )
                            .map(|n| n as u32)
                        })
                        .transpose()
                };
            let requests_per_minute = per_minute(&raw.requests_per_minute, "requests_per_minute")?;
            let tokens_per_minute = per_minute(&raw.tokens_per_minute, "tokens_per_minute")?;
            if requests_per_minute.is_none() && tokens_per_minute.is_none() {
                return Err(src.error(
                    &raw.kind,
                    format!(
                        "kind = \"rate_limit\" {table} needs `requests_per_minute` or \
                         `tokens_per_minute`; add e.g. requests_per_minute = 60"
                    ),
                ));
            }
            Fault::RateLimit {
                requests_per_minute,
                tokens_per_minute,
            }
        }
        "redis_error" => {
            let reply = raw.reply.as_ref().expect("required");
            let text = reply.get_ref().trim();
            let kind_word = text.split_whitespace().next().unwrap_or("");
            if kind_word.is_empty()
                || kind_word.chars().any(|c| !c.is_ascii_uppercase())
                || text.contains(['\r', '\n'])
            {
                return Err(src.error(
                    reply,
                    format!(
                        "{} is \"{text}\"; a Redis error reply starts with its kind in capitals \
                         and is one line, e.g. \"LOADING Redis is loading the dataset in memory\"",
                        what("reply")
                    ),
                ));
            }
            Fault::RedisError {
                reply: text.to_string(),
            }
        }
        other => {
            return Err(src.error(
                &raw.kind,
                format!("kind = \"{other}\" {table} cannot be used in a scenario file yet"),
            ))
        }
    })
}
