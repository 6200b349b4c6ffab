//! Small checks on user input shared by the scenario parser, the CLI and the fakes: where a
//! byte offset is as line:column, and whether a URL stays on this machine. Their own module so
//! that the fakes need nothing of the scenario parser.

/// 1-based line and column (in characters) of a byte offset; clamps offsets past the end.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A URL faultline may send load to: `http://` on a loopback address (127.0.0.0/8, localhost
/// or [::1]), returned without a trailing slash; else why not.
pub fn loopback(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or(""))
        .map(|authority| match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_string(),
            None => authority.split(':').next().unwrap_or("").to_string(),
        });
    let loopback = match host.as_deref() {
        Some("localhost") => true,
        Some(host) => host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false),
        None => false,
    };
    if loopback {
        Ok(url.to_string())
    } else {
        Err(format!(
            "is \"{url}\"; faultline sends load only to this machine: use http:// with \
             127.0.0.1, localhost or [::1], e.g. \"http://127.0.0.1:3000\""
        ))
    }
}

/// `code` as an HTTP status, when it is one a server may send (100 to 599): the rule for
/// scenario files and the fakes' control API alike.
pub fn http_status(code: i64) -> Option<u16> {
    u16::try_from(code).ok().filter(|c| (100..=599).contains(c))
}
