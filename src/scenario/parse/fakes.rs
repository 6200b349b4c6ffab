//! The `[fakes]` section: how the fakes run (a real Redis upstream behind the Redis fake, a
//! recording the fake LLM replays).

use super::*;
use crate::fakes::llm::replay::{OnMiss, Replay, ReplayOptions};
use crate::scenario::model::LlmReplay;

/// `[fakes]`: a Redis upstream must be a redis:// URL on this machine; a replayed recording
/// must read (it is read now, so a corrupt one stops the run before anything starts).
pub(super) fn build_fakes(
    raw: Option<raw::RawFakes>,
    src: &Source,
) -> Result<FakeOptions, ScenarioError> {
    let (redis, llm) = raw.map_or((None, None), |f| (f.redis, f.llm));
    let llm_replay = llm.map(|llm| build_replay(llm, src)).transpose()?.flatten();
    let upstream = redis.and_then(|r| r.upstream);
    let redis_upstream = match upstream {
        None => None,
        Some(text) => {
            if crate::loopback::check(text.get_ref(), "redis").is_err() {
                return Err(src.error(
                    &text,
                    format!(
                        "`upstream` in [fakes.redis] is \"{}\"; give a real redis-server on this \
                         machine, e.g. upstream = \"redis://127.0.0.1:6379\"",
                        text.get_ref()
                    ),
                ));
            }
            Some(text.into_inner())
        }
    };
    Ok(FakeOptions {
        redis_upstream,
        llm_replay,
        ..FakeOptions::default()
    })
}

/// `[fakes.llm]`: `replay` (relative to the scenario file), `replay_speed`, `replay_miss`.
fn build_replay(raw: raw::RawLlmFake, src: &Source) -> Result<Option<LlmReplay>, ScenarioError> {
    let Some(path) = raw.replay else {
        if let Some(speed) = &raw.replay_speed {
            return Err(src.error(speed, "`replay_speed` in [fakes.llm] needs `replay`, the recording to replay; add e.g. replay = \"recordings/llm.jsonl\""));
        }
        if let Some(miss) = &raw.replay_miss {
            return Err(src.error(miss, "`replay_miss` in [fakes.llm] needs `replay`, the recording to replay; add e.g. replay = \"recordings/llm.jsonl\""));
        }
        return Ok(None);
    };
    let speed = match &raw.replay_speed {
        Some(speed) => positive(
            speed,
            "`replay_speed` in [fakes.llm]",
            "replay_speed = 2.0",
            src,
        )?,
        None => 1.0,
    };
    let on_miss = match raw.replay_miss.as_ref().map(|m| (m, m.get_ref().trim())) {
        None => OnMiss::Error,
        Some((_, "error")) => OnMiss::Error,
        Some((_, "generate")) => OnMiss::Generate,
        Some((miss, other)) => {
            return Err(src.error(
                miss,
                format!(
                    "`replay_miss` in [fakes.llm] is \"{other}\"; use \"error\" (a request the \
                     recording lacks gets the provider's 404 naming it) or \"generate\" (the \
                     fake's generated answer)"
                ),
            ))
        }
    };
    let given = path.get_ref().trim();
    if given.is_empty() {
        return Err(src.error(&path, "`replay` in [fakes.llm] is empty; give a recording made by `faultline record`, e.g. replay = \"recordings/llm.jsonl\""));
    }
    // Relative to the scenario file, as a person reading it expects; a built-in scenario's
    // to the working directory.
    let file = match src.origin.strip_prefix("built-in:") {
        Some(_) => std::path::PathBuf::from(given),
        None => Path::new(src.origin)
            .parent()
            .unwrap_or(Path::new("."))
            .join(given),
    };
    let options = ReplayOptions { speed, on_miss };
    if let Err(why) = Replay::load(&file, options) {
        return Err(src.error(&path, format!("`replay` in [fakes.llm]: {why}")));
    }
    Ok(Some(LlmReplay {
        path: file,
        options,
    }))
}

/// A Redis command name as a fault's route (`GET`, `set`), upper-cased as Redis spells it.
pub(super) fn redis_command(
    text: &Text,
    table: &str,
    src: &Source,
) -> Result<String, ScenarioError> {
    let command = text.get_ref().trim();
    if command.is_empty() || !command.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(src.error(
            text,
            format!(
                "`route` {table} is \"{command}\"; for fake = \"redis\" the route is a command \
                 name, e.g. route = \"GET\""
            ),
        ));
    }
    Ok(command.to_ascii_uppercase())
}
