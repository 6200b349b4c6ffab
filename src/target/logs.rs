//! Capture of a target's stdout and stderr, line by line, timestamped on the run's clock.

use crate::sync::LockExt;
use std::sync::Mutex;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

use crate::evidence::{LogLine, LogStream};

/// Lines a target wrote, bounded: past the limit, lines are counted but not kept.
pub struct LogCapture {
    epoch: Instant,
    limit: usize,
    lines: Mutex<Vec<LogLine>>,
    dropped: Mutex<u64>,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

impl LogCapture {
    pub fn new(epoch: Instant, limit: usize) -> Self {
        LogCapture {
            epoch,
            limit,
            lines: Mutex::new(Vec::new()),
            dropped: Mutex::new(0),
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
            let mut lines = BufReader::new(file).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(text)) => capture.push(LogStream::File, text),
                    // At the end for now: the target may write more.
                    Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                    Err(_) => break,
                }
            }
        });
        self.readers.locked().push(reader);
    }

    async fn read(self: std::sync::Arc<Self>, stream: impl AsyncRead + Unpin, which: LogStream) {
        let mut lines = BufReader::new(stream).lines();
        // A line that is not UTF-8 ends the reader with an error; the rest is lost, so read on.
        loop {
            match lines.next_line().await {
                Ok(Some(text)) => self.push(which, text),
                Ok(None) => break,
                Err(error) => {
                    self.push(which, format!("[faultline: unreadable output: {error}]"));
                    break;
                }
            }
        }
    }

    fn push(&self, stream: LogStream, text: String) {
        let at_ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
        let mut lines = self.lines.locked();
        if lines.len() >= self.limit {
            *self.dropped.locked() += 1;
            return;
        }
        lines.push(LogLine {
            at_ms,
            stream,
            text,
        });
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let lines = self.lines.locked();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    /// Everything captured so far.
    pub fn snapshot(&self) -> Vec<LogLine> {
        self.lines.locked().clone()
    }

    /// Lines not kept because of the bound.
    pub fn dropped(&self) -> u64 {
        *self.dropped.locked()
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
