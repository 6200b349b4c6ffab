//! The RESP wire format: [`Frame`] (every RESP2 and RESP3 type the fake sends or a client
//! may read), [`Frame::parse`] for replies, [`parse_request`] for what clients send
//! (multibulk arrays of bulk strings, or inline commands as redis-cli and telnet send them),
//! and [`Frame::encode`], which writes RESP2 or RESP3 as the connection negotiated with HELLO.
//!
//! Hand-written rather than a codec crate: the fake must reject input with Redis's own protocol
//! error strings and limits (512 MB bulk strings, 64 KB inline requests), which the codec
//! crates do not reproduce, and "need more bytes" must be a value ([`FrameError::Incomplete`]),
//! not an error, so the connection can read more and try again without copying.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

/// Redis's `proto-max-bulk-len` default: a bulk string longer than this is a protocol error.
pub const MAX_BULK_LEN: i64 = 512 * 1024 * 1024;
/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request or multibulk header line.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Redis caps the element count of one request at `INT_MAX`; we take 1M elements, which no
/// cache client sends, so a hostile count cannot reserve memory up front.
const MAX_MULTIBULK_LEN: i64 = 1024 * 1024;
/// Replies nest (maps of arrays…); a hostile reply must not overflow the stack.
const MAX_DEPTH: usize = 64;

/// One RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Simple(String),
    /// An error reply; the text starts with its kind (`ERR`, `WRONGTYPE`, `LOADING`).
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    Array(Vec<Frame>),
    /// RESP3 map; a flat array of key, value, key, value… in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Frame>),
    Double(f64),
    Boolean(bool),
    /// RESP3 verbatim string with its three-letter format (`txt`); a bulk string in RESP2.
    Verbatim(String, Bytes),
    BigNumber(String),
    /// RESP3 push (pub/sub messages); never sent by the fake, parsed for completeness.
    Push(Vec<Frame>),
}

/// Why bytes did not make a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not enough bytes yet: read more and parse again.
    Incomplete,
    /// The bytes can never make a frame; the text is Redis's message (`Protocol error: …`).
    Protocol(String),
}

fn protocol(message: &str) -> FrameError {
    FrameError::Protocol(format!("Protocol error: {message}"))
}

impl Frame {
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(message.into())
    }

    pub fn bulk(bytes: impl Into<Bytes>) -> Frame {
        Frame::Bulk(bytes.into())
    }

    /// Writes the frame as RESP3 when `resp3`, else as RESP2 (RESP3-only types degrade the way
    /// Redis degrades them).
    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Frame::Simple(text) => {
                out.put_u8(b'+');
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            }
            Frame::Error(text) => {
                out.put_u8(b'-');
                // An error is one line: a CR or LF inside would end it early and desync the client.
                for byte in text.bytes() {
                    out.put_u8(if byte == b'\r' || byte == b'\n' {
                        b' '
                    } else {
                        byte
                    });
                }
                out.put_slice(b"\r\n");
            }
            Frame::Integer(n) => {
                let _ = write!(out, ":{n}\r\n");
            }
            Frame::Bulk(bytes) => {
                let _ = write!(out, "${}\r\n", bytes.len());
                out.put_slice(bytes);
                out.put_slice(b"\r\n");
            }
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => encode_all(out, b'*', items, resp3),
            Frame::Set(items) => encode_all(out, if resp3 { b'~' } else { b'*' }, items, resp3),
            Frame::Push(items) => encode_all(out, if resp3 { b'>' } else { b'*' }, items, resp3),
            Frame::Map(pairs) => {
                if resp3 {
                    let _ = write!(out, "%{}\r\n", pairs.len());
                } else {
                    let _ = write!(out, "*{}\r\n", pairs.len() * 2);
                }
                for (key, value) in pairs {
                    key.encode(out, resp3);
                    value.encode(out, resp3);
                }
            }
            Frame::Double(x) if resp3 => {
                let _ = write!(out, ",{}\r\n", format_double(*x));
            }
            Frame::Double(x) => Frame::Bulk(format_double(*x).into()).encode(out, resp3),
            Frame::Boolean(b) if resp3 => {
                out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            }
            Frame::Boolean(b) => Frame::Integer(*b as i64).encode(out, resp3),
            Frame::Verbatim(format, text) if resp3 => {
                let _ = write!(out, "={}\r\n{format}:", text.len() + 4);
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim(_, text) => Frame::Bulk(text.clone()).encode(out, resp3),
            Frame::BigNumber(digits) if resp3 => {
                let _ = write!(out, "({digits}\r\n");
            }
            Frame::BigNumber(digits) => Frame::Bulk(digits.clone().into()).encode(out, resp3),
        }
    }

    /// The frame's bytes, for tests and one-off replies.
    pub fn to_bytes(&self, resp3: bool) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out, resp3);
        out.freeze()
    }

    /// Parses one frame of any RESP2 or RESP3 type from the start of `buf`; returns it with
    /// the number of bytes it took. Used for replies (tests, the proxy), not for requests.
    pub fn parse(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
        let mut cursor = Cursor { buf, pos: 0 };
        let frame = cursor.frame(0)?;
        Ok((frame, cursor.pos))
    }
}

fn encode_all(out: &mut BytesMut, tag: u8, items: &[Frame], resp3: bool) {
    let _ = write!(out, "{}{}\r\n", tag as char, items.len());
    for item in items {
        item.encode(out, resp3);
    }
}

fn format_double(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else if x.is_nan() {
        "nan".into()
    } else {
        x.to_string()
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    /// The next line without its CRLF.
    fn line(&mut self) -> Result<&[u8], FrameError> {
        let rest = &self.buf[self.pos..];
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(end) => {
                self.pos += end + 2;
                Ok(&rest[..end])
            }
            None if rest.len() > MAX_INLINE_LEN => Err(protocol("too big reply line")),
            None => Err(FrameError::Incomplete),
        }
    }

    fn number(&mut self) -> Result<i64, FrameError> {
        let line = self.line()?;
        parse_i64(line).ok_or_else(|| protocol("invalid length or integer"))
    }

    fn text(&mut self) -> Result<String, FrameError> {
        Ok(String::from_utf8_lossy(self.line()?).into_owned())
    }

    /// `len` bytes followed by CRLF.
    fn blob(&mut self, len: i64) -> Result<Bytes, FrameError> {
        if !(0..=MAX_BULK_LEN).contains(&len) {
            return Err(protocol("invalid bulk length"));
        }
        let len = len as usize;
        let rest = &self.buf[self.pos..];
        if rest.len() < len + 2 {
            return Err(FrameError::Incomplete);
        }
        if &rest[len..len + 2] != b"\r\n" {
            return Err(protocol("bulk string not terminated by CRLF"));
        }
        self.pos += len + 2;
        Ok(Bytes::copy_from_slice(&rest[..len]))
    }

    fn items(&mut self, count: i64, depth: usize) -> Result<Vec<Frame>, FrameError> {
        if !(0..=MAX_MULTIBULK_LEN).contains(&count) {
            return Err(protocol("invalid multibulk length"));
        }
        // Reserve no more than the bytes left could hold (3 bytes per frame at least).
        let room = (self.buf.len() - self.pos) / 3;
        let mut items = Vec::with_capacity((count as usize).min(room));
        for _ in 0..count {
            items.push(self.frame(depth + 1)?);
        }
        Ok(items)
    }

    fn frame(&mut self, depth: usize) -> Result<Frame, FrameError> {
        if depth > MAX_DEPTH {
            return Err(protocol("reply nested too deeply"));
        }
        let Some(&tag) = self.buf.get(self.pos) else {
            return Err(FrameError::Incomplete);
        };
        self.pos += 1;
        match tag {
            b'+' => Ok(Frame::Simple(self.text()?)),
            b'-' => Ok(Frame::Error(self.text()?)),
            b':' => Ok(Frame::Integer(self.number()?)),
            b'$' => match self.number()? {
                -1 => Ok(Frame::Null),
                len => Ok(Frame::Bulk(self.blob(len)?)),
            },
            b'*' => match self.number()? {
                -1 => Ok(Frame::NullArray),
                count => Ok(Frame::Array(self.items(count, depth)?)),
            },
            b'~' => {
                let count = self.number()?;
                Ok(Frame::Set(self.items(count, depth)?))
            }
            b'>' => {
                let count = self.number()?;
                Ok(Frame::Push(self.items(count, depth)?))
            }
            b'%' => {
                let count = self.number()?;
                let flat = self.items(count.saturating_mul(2), depth)?;
                let mut pairs = Vec::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                    pairs.push((key, value));
                }
                Ok(Frame::Map(pairs))
            }
            b'_' => {
                self.line()?;
                Ok(Frame::Null)
            }
            b'#' => match self.line()? {
                b"t" => Ok(Frame::Boolean(true)),
                b"f" => Ok(Frame::Boolean(false)),
                _ => Err(protocol("invalid boolean")),
            },
            b',' => {
                let text = self.text()?;
                let value = match text.as_str() {
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    other => other.parse().map_err(|_| protocol("invalid double"))?,
                };
                Ok(Frame::Double(value))
            }
            b'(' => Ok(Frame::BigNumber(self.text()?)),
            b'=' => {
                let len = self.number()?;
                let blob = self.blob(len)?;
                if blob.len() < 4 || blob[3] != b':' {
                    return Err(protocol("invalid verbatim string"));
                }
                let format = String::from_utf8_lossy(&blob[..3]).into_owned();
                Ok(Frame::Verbatim(format, blob.slice(4..)))
            }
            b'!' => {
                let len = self.number()?;
                let blob = self.blob(len)?;
                Ok(Frame::Error(String::from_utf8_lossy(&blob).into_owned()))
            }
            other => Err(FrameError::Protocol(format!(
                "Protocol error: unexpected type byte {other:#04x}"
            ))),
        }
    }
}

/// Parses one request from the start of `buf` as Redis's `processInputBuffer` does: a
/// multibulk array of bulk strings when it starts with `*`, else an inline command line.
/// Returns the arguments (empty for an empty line or `*0`, which Redis skips silently) and the
/// bytes consumed. Protocol errors carry Redis's own text; Redis replies it and closes.
pub fn parse_request(buf: &[u8]) -> Result<(Vec<Bytes>, usize), FrameError> {
    match buf.first() {
        None => Err(FrameError::Incomplete),
        Some(b'*') => parse_multibulk(buf),
        Some(_) => parse_inline(buf),
    }
}

fn parse_multibulk(buf: &[u8]) -> Result<(Vec<Bytes>, usize), FrameError> {
    let Some(newline) = memchr(b'\r', buf) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(protocol("too big mbulk count string"));
        }
        return Err(FrameError::Incomplete);
    };
    if newline > MAX_INLINE_LEN {
        return Err(protocol("too big mbulk count string"));
    }
    // Redis reads the count line up to '\r' and skips the '\n' after it.
    if buf.len() < newline + 2 {
        return Err(FrameError::Incomplete);
    }
    let count = match parse_i64(&buf[1..newline]) {
        Some(count) if count <= MAX_MULTIBULK_LEN => count,
        _ => return Err(protocol("invalid multibulk length")),
    };
    let mut pos = newline + 2;
    if count <= 0 {
        return Ok((Vec::new(), pos));
    }
    // Never reserve more than the bytes present could hold: `*1000000` alone is 10 bytes.
    let mut args = Vec::with_capacity((count as usize).min(buf.len() / 4 + 1));
    for _ in 0..count {
        let rest = &buf[pos..];
        let Some(newline) = memchr(b'\r', rest) else {
            if rest.len() > MAX_INLINE_LEN {
                return Err(protocol("too big bulk count string"));
            }
            return Err(FrameError::Incomplete);
        };
        if newline > MAX_INLINE_LEN {
            return Err(protocol("too big bulk count string"));
        }
        if rest[0] != b'$' {
            return Err(FrameError::Protocol(format!(
                "Protocol error: expected '$', got '{}'",
                rest[0] as char
            )));
        }
        if rest.len() < newline + 2 {
            return Err(FrameError::Incomplete);
        }
        let len = match parse_i64(&rest[1..newline]) {
            Some(len) if (0..=MAX_BULK_LEN).contains(&len) => len as usize,
            _ => return Err(protocol("invalid bulk length")),
        };
        let start = pos + newline + 2;
        // The payload and its CRLF (Redis does not check the CRLF's bytes, only skips them).
        if buf.len() < start + len + 2 {
            return Err(FrameError::Incomplete);
        }
        args.push(Bytes::copy_from_slice(&buf[start..start + len]));
        pos = start + len + 2;
    }
    Ok((args, pos))
}

fn parse_inline(buf: &[u8]) -> Result<(Vec<Bytes>, usize), FrameError> {
    let Some(newline) = memchr(b'\n', buf) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(protocol("too big inline request"));
        }
        return Err(FrameError::Incomplete);
    };
    if newline > MAX_INLINE_LEN {
        return Err(protocol("too big inline request"));
    }
    let mut line = &buf[..newline];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or_else(|| protocol("unbalanced quotes in request"))?;
    Ok((args, newline + 1))
}

/// Splits an inline command line like Redis's `sdssplitargs`: whitespace-separated words,
/// with "double quotes" (and \n, \r, \t, \xHH escapes) and 'single quotes'. `None` when a
/// quote is unbalanced or a closing quote is not followed by a space.
fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut word = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let byte = *line.get(i)?;
                if byte == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&line[i + 2..i + 4]).ok();
                    if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        word.push(value);
                        i += 4;
                        continue;
                    }
                }
                if byte == b'\\' && i + 1 < line.len() {
                    word.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                } else if byte == b'"' {
                    if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    word.push(byte);
                    i += 1;
                }
            } else if in_single {
                let byte = *line.get(i)?;
                if byte == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    word.push(b'\'');
                    i += 2;
                } else if byte == b'\'' {
                    if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    word.push(byte);
                    i += 1;
                }
            } else {
                match line.get(i) {
                    None => break,
                    Some(b) if b.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&b) => word.push(b),
                }
                i += 1;
            }
        }
        args.push(Bytes::from(word));
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Redis's `string2ll`: an optional `-`, then digits with no leading zero (except "0" itself),
/// no spaces, no `+`, within i64.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        value = if negative {
            value.checked_mul(10)?.checked_sub(d)?
        } else {
            value.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multibulk_request_needs_all_its_bytes() {
        let full = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse_request(&full[..cut]),
                Err(FrameError::Incomplete),
                "{cut}"
            );
        }
        let (args, used) = parse_request(full).unwrap();
        assert_eq!(args, vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(used, full.len());
    }

    #[test]
    fn inline_requests_split_on_spaces_and_honour_quotes() {
        let (args, used) = parse_request(b"set k \"a b\\n\" 'c'\r\nPING").unwrap();
        assert_eq!(args, vec!["set", "k", "a b\n", "c"]);
        assert_eq!(used, 19);
        assert_eq!(
            parse_request(b"set \"k\r\n"),
            Err(FrameError::Protocol(
                "Protocol error: unbalanced quotes in request".into()
            ))
        );
    }

    #[test]
    fn oversized_and_malformed_lengths_are_redis_protocol_errors() {
        let error = |input: &[u8]| match parse_request(input) {
            Err(FrameError::Protocol(text)) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            error(b"*1\r\n$536870913\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(error(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            error(b"*1\r\n:1\r\n"),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            error(&vec![b'a'; MAX_INLINE_LEN + 1]),
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn integers_parse_as_strictly_as_redis_does() {
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"01"[..],
            b"+1",
            b" 1",
            b"-0",
            b"1.0",
            b"",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_frame_round_trips_through_resp3() {
        let frame = Frame::Array(vec![
            Frame::Simple("OK".into()),
            Frame::Error("ERR x".into()),
            Frame::Integer(-3),
            Frame::bulk("a\r\nb"),
            Frame::Null,
            Frame::Map(vec![(
                Frame::bulk("k"),
                Frame::Set(vec![Frame::Integer(1)]),
            )]),
            Frame::Double(1.5),
            Frame::Boolean(true),
            Frame::Verbatim("txt".into(), Bytes::from("hi")),
            Frame::BigNumber("123".into()),
        ]);
        let bytes = frame.to_bytes(true);
        assert_eq!(Frame::parse(&bytes), Ok((frame, bytes.len())));
    }

    #[test]
    fn resp2_degrades_maps_and_nulls_as_redis_does() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Null)]);
        assert_eq!(&map.to_bytes(false)[..], b"*2\r\n$1\r\na\r\n$-1\r\n");
        assert_eq!(&map.to_bytes(true)[..], b"%1\r\n$1\r\na\r\n_\r\n");
    }

    #[test]
    fn random_bytes_never_panic_the_parsers() {
        // A small xorshift so the test needs no RNG crate and repeats exactly.
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"*$:+-_#,(=%~>!\r\n0123456789-x ";
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        r as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let _ = parse_request(&input);
            let _ = Frame::parse(&input);
        }
    }
}
