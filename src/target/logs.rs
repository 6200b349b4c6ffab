//! Capture of a target's stdout and stderr (and log file), line by line, timestamped on the
//! run's clock, within fixed bounds whatever the target writes.
//!
//! A target's output is bytes, not text: a line that is not UTF-8 is decoded lossily and
//! counted, never a reason to stop reading (a reader that stops leaves the pipe full, and the
//! target then blocks or dies of SIGPIPE). A line is cut at [`MAX_LINE_BYTES`]; the lines kept
//! are a ring of the most recent ones, bounded by count and by bytes, so a target that prints
//! 200 MB at start-up loses its start-up lines, not the ones written during the load that the
//! checks read. Everything dropped is counted, and lines dropped after the load started are
//! counted apart (see [`LogCapture::mark_load_start`]): they are what makes a log check
//! "not applicable".

use crate::sync::LockExt;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

use crate::evidence::{LogLine, LogLoss, LogStream};

/// A line longer than this is cut (and counted): a JSON log line is a few hundred bytes, and
/// a 300 MB line must not take 300 MB of memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most lines kept (the most recent ones).
pub const MAX_LINES: usize = 200_000;
/// Most bytes of line text kept (the most recent lines).
pub const MAX_TOTAL_BYTES: usize = 32 * 1024 * 1024;

/// Lines a target wrote, bounded: a ring of the most recent lines, the rest counted.
pub struct LogCapture {
    epoch: Instant,
    ring: Mutex<Ring>,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
    loss: LogLoss,
    /// Lines written at or after this moment (ms from the epoch) count as the load's.
    load_from_ms: Option<f64>,
}

/// How one bounded read of a line ended.
#[derive(Debug, PartialEq)]
enum LineEnd {
    /// A whole line (newline seen; the newline is not kept).
    Newline,
    /// The stream ended (the buffer holds what came after the last newline, maybe nothing).
    Eof,
}

impl LogCapture {
    pub fn new(epoch: Instant) -> Self {
        LogCapture {
            epoch,
            ring: Mutex::new(Ring::default()),
            readers: Mutex::new(Vec::new()),
        }
    }

    /// Starts a reader task per stream.
    pub fn follow(
        self: &std::sync::Arc<Self>,
        stdout: Option<impl AsyncRead + Unpin + Send + 'static>,
        stderr: Option<impl AsyncRead + Unpin + Send + 'static>,
    ) {
        let mut readers = self.readers.locked();
        if let Some(out) = stdout {
            readers.push(tokio::spawn(self.clone().read(out, LogStream::Stdout)));
        }
        if let Some(err) = stderr {
            readers.push(tokio::spawn(self.clone().read(err, LogStream::Stderr)));
        }
    }

    /// Follows a log file the target writes, from its current end (older lines belong to
    /// earlier runs), polling for new lines until [`LogCapture::finish`].
    pub fn follow_file(self: &std::sync::Arc<Self>, path: std::path::PathBuf) {
        let capture = self.clone();
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncSeekExt;
            let mut file = loop {
                // The target may create the file only once it starts.
                match tokio::fs::File::open(&path).await {
                    Ok(file) => break file,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            };
            if file.seek(std::io::SeekFrom::End(0)).await.is_err() {
                return;
            }
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            let mut cut = false;
            loop {
                match read_bounded_line(&mut reader, &mut line, &mut cut).await {
                    Ok(LineEnd::Newline) => {
                        capture.push(LogStream::File, &line, cut);
                        line.clear();
                        cut = false;
                    }
                    // At the end for now: the target may write the rest of the line, or more.
                    Ok(LineEnd::Eof) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await
                    }
                    Err(_) => break,
                }
            }
        });
        self.readers.locked().push(reader);
    }

    async fn read(self: std::sync::Arc<Self>, stream: impl AsyncRead + Unpin, which: LogStream) {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        let mut cut = false;
        loop {
            match read_bounded_line(&mut reader, &mut line, &mut cut).await {
                Ok(LineEnd::Newline) => self.push(which, &line, cut),
                Ok(LineEnd::Eof) => {
                    if !line.is_empty() {
                        self.push(which, &line, cut);
                    }
                    break;
                }
                // A read error on a pipe (not bad bytes: those are decoded lossily) means the
                // stream is gone.
                Err(_) => break,
            }
            line.clear();
            cut = false;
        }
    }

    fn push(&self, stream: LogStream, bytes: &[u8], cut: bool) {
        let at_ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
        let text = String::from_utf8_lossy(bytes);
        let not_utf8 = matches!(text, std::borrow::Cow::Owned(_));
        let text = text.into_owned();
        let mut ring = self.ring.locked();
        ring.loss.not_utf8 += u64::from(not_utf8);
        ring.loss.cut += u64::from(cut);
        ring.bytes += text.len();
        ring.lines.push_back(LogLine {
            at_ms,
            stream,
            text,
        });
        while ring.lines.len() > MAX_LINES || ring.bytes > MAX_TOTAL_BYTES {
            let Some(old) = ring.lines.pop_front() else {
                break;
            };
            ring.bytes -= old.text.len();
            ring.loss.dropped += 1;
            if ring.load_from_ms.is_some_and(|from| old.at_ms >= from) {
                ring.loss.dropped_in_load += 1;
            }
        }
    }

    /// From now on, lines pushed out of the ring count as lost from the load (what checks
    /// read); lines before are start-up output.
    pub fn mark_load_start(&self) {
        let at_ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
        self.ring.locked().load_from_ms = Some(at_ms);
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let ring = self.ring.locked();
        ring.lines
            .iter()
            .skip(ring.lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Everything kept so far.
    pub fn snapshot(&self) -> Vec<LogLine> {
        self.ring.locked().lines.iter().cloned().collect()
    }

    /// What the bounds cost so far: lines dropped, cut, or not UTF-8.
    pub fn loss(&self) -> LogLoss {
        self.ring.locked().loss.clone()
    }

    /// Waits until the readers have read to the end of the streams (after the process ended).
    pub async fn finish(&self) {
        let readers: Vec<_> = std::mem::take(&mut *self.readers.locked());
        for mut reader in readers {
            // Bounded: a grandchild holding the pipe open, or a log file that never ends,
            // must not hold up the run.
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut reader)
                .await
                .is_err()
            {
                reader.abort();
            }
        }
    }
}

/// Reads up to the next newline into `line`, keeping at most [`MAX_LINE_BYTES`] of it (the
/// rest is read and thrown away, and `cut` set). `line` keeps what it held: a file follower
/// calls again after `Eof` to finish a line the target is still writing.
async fn read_bounded_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    cut: &mut bool,
) -> std::io::Result<LineEnd> {
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(LineEnd::Eof);
        }
        let (taken, newline) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        if taken > room {
            *cut = true;
        }
        line.extend_from_slice(&chunk[..taken.min(room)]);
        reader.consume(taken + usize::from(newline));
        if newline {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(LineEnd::Newline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn capture(bytes: Vec<u8>) -> Arc<LogCapture> {
        let capture = Arc::new(LogCapture::new(Instant::now()));
        capture.follow(Some(std::io::Cursor::new(bytes)), None::<tokio::io::Empty>);
        capture.finish().await;
        capture
    }

    #[tokio::test]
    async fn a_line_that_is_not_utf8_is_kept_lossily_and_reading_goes_on() {
        let capture = capture(b"one\ncaf\xe9\nthree\n".to_vec()).await;
        let texts: Vec<String> = capture.snapshot().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["one", "caf\u{fffd}", "three"]);
        assert_eq!(capture.loss().not_utf8, 1);
    }

    #[tokio::test]
    async fn a_long_line_is_cut_and_the_next_line_is_whole() {
        let mut bytes = vec![b'x'; MAX_LINE_BYTES * 3];
        bytes.extend_from_slice(b"\nnext\n");
        let capture = capture(bytes).await;
        let lines = capture.snapshot();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text.len(), MAX_LINE_BYTES);
        assert_eq!(lines[1].text, "next");
        assert_eq!(capture.loss().cut, 1);
    }

    #[tokio::test]
    async fn the_ring_keeps_the_newest_lines_and_counts_the_rest() {
        let mut bytes = Vec::new();
        for i in 0..MAX_LINES + 10 {
            bytes.extend_from_slice(format!("{i}\n").as_bytes());
        }
        let capture = capture(bytes).await;
        let lines = capture.snapshot();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0].text, "10");
        assert_eq!(capture.loss().dropped, 10);
        assert_eq!(capture.loss().dropped_in_load, 0);
    }

    #[tokio::test]
    async fn the_ring_is_bounded_by_bytes() {
        let line = vec![b'y'; MAX_LINE_BYTES - 1];
        let mut bytes = Vec::new();
        let count = MAX_TOTAL_BYTES / MAX_LINE_BYTES + 5;
        for _ in 0..count {
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
        let capture = capture(bytes).await;
        let kept = capture.snapshot();
        assert!(kept.iter().map(|l| l.text.len()).sum::<usize>() <= MAX_TOTAL_BYTES);
        assert_eq!(kept.len() as u64 + capture.loss().dropped, count as u64);
    }
}
