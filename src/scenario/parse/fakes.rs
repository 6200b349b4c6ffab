//! The `[fakes]` section: how the fakes run (a real Redis upstream behind the Redis fake).

use super::*;

/// `[fakes]`: a Redis upstream must be a redis:// URL on this machine.
pub(super) fn build_fakes(
    raw: Option<raw::RawFakes>,
    src: &Source,
) -> Result<FakeOptions, ScenarioError> {
    let upstream = raw.and_then(|f| f.redis).and_then(|r| r.upstream);
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
        ..FakeOptions::default()
    })
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
