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

/// A URL faultline may send load to: `http://` on a host whose every address is loopback
/// (see [`crate::loopback`]), returned without a trailing slash; else why not.
pub fn loopback(url: &str) -> Result<String, String> {
    crate::loopback::check(url, "http")
}

/// `code` as an HTTP status, when it is one a server may send (100 to 599): the rule for
/// scenario files and the fakes' control API alike.
pub fn http_status(code: i64) -> Option<u16> {
    u16::try_from(code).ok().filter(|c| (100..=599).contains(c))
}
