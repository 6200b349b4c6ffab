//! Value checks shared by the section builders: durations, shares, positive and whole
//! numbers, status lists, URL paths and loopback URLs, each refused at its line:column.

use super::*;

/// Durations above this are refused: no run lasts a year, and the cap keeps later arithmetic
/// on them (quick scaling, phase maths in f64) far from overflow.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A whole number within `min..=max`; `example` shows a good one.
pub(super) fn whole_number(
    value: &Spanned<i64>,
    what: &str,
    min: i64,
    max: i64,
    example: &str,
    src: &Source,
) -> Result<i64, ScenarioError> {
    let n = *value.get_ref();
    if n < min || n > max {
        return Err(src.error(
            value,
            format!("{what} is {n}; it must be from {min} to {max}, e.g. {example}"),
        ));
    }
    Ok(n)
}

/// A share from 0 to 1; `example` is a good value.
pub(super) fn share(
    value: &Spanned<f64>,
    what: &str,
    example: &str,
    src: &Source,
) -> Result<f64, ScenarioError> {
    let v = *value.get_ref();
    if !(0.0..=1.0).contains(&v) {
        return Err(src.error(
            value,
            format!("{what} is {v}; it is a share, from 0 to 1, e.g. {example}"),
        ));
    }
    Ok(v)
}

/// A finite number above zero.
pub(super) fn positive(
    value: &Spanned<f64>,
    what: &str,
    example: &str,
    src: &Source,
) -> Result<f64, ScenarioError> {
    let v = *value.get_ref();
    if !(v.is_finite() && v > 0.0) {
        return Err(src.error(
            value,
            format!("{what} is {v}; it must be more than 0, e.g. {example}"),
        ));
    }
    Ok(v)
}

/// A list of HTTP statuses.
pub(super) fn status_list(
    list: &[Spanned<i64>],
    what: &str,
    src: &Source,
) -> Result<Vec<u16>, ScenarioError> {
    list.iter()
        .map(|status| {
            let value = *status.get_ref();
            crate::input::http_status(value).ok_or_else(|| {
                src.error(
                    status,
                    format!(
                        "{what} holds {value}; each must be an HTTP status from 100 to 599, \
                             e.g. [400, 401]"
                    ),
                )
            })
        })
        .collect()
}

/// A humantime duration (`"250ms"`, `"1m 30s"`); `what` names the field in errors.
pub(super) fn duration(text: &Text, what: &str, src: &Source) -> Result<Duration, ScenarioError> {
    let written = text.get_ref();
    let parsed = humantime::parse_duration(written.trim()).map_err(|e| {
        src.error(
            text,
            format!(
                "{what} is not a duration: \"{written}\" ({e}); expected a duration like \"30s\" \
                 or \"250ms\""
            ),
        )
    })?;
    if parsed > MAX_DURATION {
        return Err(src.error(
            text,
            format!("{what} is \"{written}\", longer than a year; use a shorter duration"),
        ));
    }
    Ok(parsed)
}

/// A duration that must be more than zero.
pub(super) fn positive_duration(
    text: &Text,
    what: &str,
    src: &Source,
) -> Result<Duration, ScenarioError> {
    let parsed = duration(text, what, src)?;
    if parsed.is_zero() {
        return Err(src.error(
            text,
            format!("{what} is zero; it must be more than zero, e.g. \"30s\" or \"250ms\"",),
        ));
    }
    Ok(parsed)
}

pub(super) fn optional_duration(
    text: Option<Text>,
    what: &str,
    src: &Source,
) -> Result<Option<Duration>, ScenarioError> {
    text.map(|t| duration(&t, what, src)).transpose()
}

/// A target URL to attach to: `http://` on a loopback address (faultline sends load to this
/// machine only), without a trailing slash.
pub(super) fn loopback_url(text: &Text, src: &Source) -> Result<String, ScenarioError> {
    loopback(text.get_ref()).map_err(|why| src.error(text, format!("`url` in [target] {why}")))
}

/// An HTTP path: must start with `/`.
pub(super) fn url_path(text: &Text, what: &str, src: &Source) -> Result<String, ScenarioError> {
    let path = text.get_ref();
    if !path.starts_with('/') {
        return Err(src.error(
            text,
            format!(
                "{what} is \"{path}\"; a path must start with \"/\", e.g. \"/{}\"",
                path.trim_start_matches('/')
            ),
        ));
    }
    Ok(path.clone())
}
