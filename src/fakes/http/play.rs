//! A [`Script`] played as a response body: its pieces sent in order, its waits slept, and
//! the stream cut where a fault says, with the attempt recorded when the body ends however
//! it ends.

use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;

use super::{Entry, Render, Script, Step};

/// How long a cut stream stays pending before failing, so what came before it is written.
const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(5);

/// Why a streamed body stopped early; hyper then closes the connection mid-body.
#[derive(Debug, thiserror::Error)]
#[error("stream cut by a fault")]
pub(super) struct Cut;

/// Plays `script` as a body stream. `entry` rides along and records the attempt when the
/// stream ends, is cut, or is dropped because the client went away.
///
/// A hand-written stream rather than `futures::stream::unfold`: a long stream runs this once
/// per chunk, and here that is a step read and one timer reset (the stream's only timer, made
/// once), with no per-chunk future or state moves.
pub(super) fn play(script: Script, entry: Entry) -> Play {
    let now = tokio::time::Instant::now();
    Play {
        deadline: script.cut_after.map(|after| now + after),
        steps: script.steps.into_iter(),
        entry: Some(entry),
        render: script.render,
        sleep: Box::pin(tokio::time::sleep_until(now)),
        sleeping: false,
        cutting: false,
    }
}

pub(super) struct Play {
    steps: std::vec::IntoIter<Step>,
    /// Taken (and so recorded) when the stream ends or is cut.
    entry: Option<Entry>,
    /// When a `stream_cut` after a time cuts the stream.
    deadline: Option<tokio::time::Instant>,
    render: Option<Render>,
    /// The wait in progress, if `sleeping`; reset for each wait.
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    sleeping: bool,
    /// The wait in progress is the pause before a `Cut`.
    cutting: bool,
}

impl Play {
    fn end(&mut self, last: Option<Result<Bytes, Cut>>) -> Poll<Option<Result<Bytes, Cut>>> {
        self.steps = Vec::new().into_iter();
        self.deadline = None;
        self.sleeping = false;
        drop(self.entry.take());
        Poll::Ready(last)
    }

    fn sent(&mut self) {
        if let Some(entry) = &mut self.entry {
            let sent = &mut entry.record().chunks_sent;
            *sent = Some(sent.unwrap_or(0) + 1);
        }
    }

    fn wait_until(&mut self, until: tokio::time::Instant) {
        self.sleep.as_mut().reset(until);
        self.sleeping = true;
    }
}

impl futures::Stream for Play {
    type Item = Result<Bytes, Cut>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        use std::future::Future;
        let this = self.get_mut();
        loop {
            if this.sleeping {
                std::task::ready!(this.sleep.as_mut().poll(cx));
                this.sleeping = false;
                if this.cutting {
                    return this.end(Some(Err(Cut)));
                }
            }
            if this
                .deadline
                .is_some_and(|at| tokio::time::Instant::now() >= at)
            {
                return this.end(Some(Err(Cut)));
            }
            let Some(step) = this.steps.next() else {
                return this.end(None);
            };
            match step {
                Step::Send(piece) => {
                    this.sent();
                    return Poll::Ready(Some(Ok(*piece)));
                }
                Step::Render(index) => {
                    this.sent();
                    let piece = this
                        .render
                        .as_ref()
                        .map_or_else(Bytes::new, |r| (r.0)(index));
                    return Poll::Ready(Some(Ok(piece)));
                }
                Step::Wait(wait) => {
                    let until = tokio::time::Instant::now() + wait;
                    this.wait_until(this.deadline.map_or(until, |cut| until.min(cut)));
                }
                Step::Cut => {
                    // hyper flushes what it buffered only when the body is pending; without
                    // this pause the error would discard the head and the pieces sent before.
                    this.cutting = true;
                    this.wait_until(tokio::time::Instant::now() + FLUSH_BEFORE_CUT);
                }
            }
        }
    }
}
