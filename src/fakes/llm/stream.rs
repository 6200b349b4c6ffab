//! Turning a list of server-sent events into a [`Script`] under the stream faults: time to
//! first token and inter-token delay with jitter (`slow_stream`), a pause (`stall`), and a cut
//! after N events or M ms (`stream_cut`). Both providers' streams are paced here, so a fault
//! means the same on `/v1/chat/completions` and `/v1/messages`.

use std::time::Duration;

use bytes::Bytes;

use crate::fakes::fault::{Fault, Switchboard};
use crate::fakes::http::{Script, Step};

/// One event of a stream: its bytes, or the index of a piece the script renders when sent.
#[derive(Clone, Debug)]
pub(super) enum Frame {
    Ready(Bytes),
    Later(u32),
}

impl From<Bytes> for Frame {
    fn from(bytes: Bytes) -> Self {
        Frame::Ready(bytes)
    }
}

impl Script {
    fn frame(&mut self, frame: Frame) {
        match frame {
            Frame::Ready(bytes) => self.send(bytes),
            Frame::Later(index) => self.steps.push(Step::Render(index)),
        }
    }
}

/// A time-only `stream_cut` holds the stream open before its end until the cut comes, so the
/// cut always lands mid-stream however fast the rest was sent.
const HOLD_FOR_CUT: Duration = Duration::from_secs(3600);

/// `data: {json}\n\n`, OpenAI's frame, serialized straight into the frame's buffer.
pub(super) fn data(json: &impl serde::Serialize) -> Bytes {
    let mut frame = Vec::with_capacity(256);
    frame.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut frame, json).expect("the fake's frames serialize");
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// `event: name\ndata: {json}\n\n`, Anthropic's named frame.
pub(super) fn event(name: &str, json: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// The first half of `frame` and a blank line: an event cut off mid-JSON
/// (`malformed: truncated_json`).
pub(super) fn half_frame(frame: &[u8]) -> Bytes {
    let mut broken = frame[..frame.len() / 2].to_vec();
    broken.extend_from_slice(b"\n\n");
    Bytes::from(broken)
}

/// The pieces a streamed answer is sent in: words with their leading space, about a token each.
pub(super) fn pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

/// Paces `events` (the stream's frames, in order) as `fault` says. Jitter is drawn from the
/// switchboard's seeded RNG now, in request order, so runs repeat.
pub(super) fn pace(events: Vec<Frame>, fault: Option<&Fault>, board: &Switchboard) -> Script {
    let mut script = Script::default();
    script.steps.reserve(events.len() * 2);
    let count = events.len();
    match fault {
        Some(Fault::SlowStream {
            first_token,
            inter_token,
            jitter,
        }) => {
            for (i, frame) in events.into_iter().enumerate() {
                let wait = if i == 0 {
                    *first_token
                } else {
                    inter_token.mul_f64(board.sample_jitter(*jitter))
                };
                script.wait(wait);
                script.frame(frame);
            }
        }
        Some(Fault::Stall {
            after_chunks,
            stall,
        }) => {
            for (i, frame) in events.into_iter().enumerate() {
                if i == *after_chunks as usize {
                    script.wait(*stall);
                }
                script.frame(frame);
            }
        }
        Some(Fault::StreamCut {
            after_chunks,
            after,
        }) => {
            script.cut_after = *after;
            let keep = match (after_chunks, after) {
                (Some(n), _) => (*n as usize).min(count),
                // Everything but the last frame, then hold until the deadline cuts.
                (None, _) => count.saturating_sub(1),
            };
            for frame in events.into_iter().take(keep) {
                script.frame(frame);
            }
            if after_chunks.is_none() {
                script.wait(HOLD_FOR_CUT);
            }
            script.cut();
        }
        _ => events.into_iter().for_each(|frame| script.frame(frame)),
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize) -> Vec<Frame> {
        (0..n).map(|i| Bytes::from(i.to_string()).into()).collect()
    }

    #[test]
    fn a_step_stays_small() {
        assert!(std::mem::size_of::<Step>() <= 24);
    }

    #[test]
    fn a_chunk_count_cut_sends_that_many_frames_then_cuts() {
        let board = Switchboard::new(1);
        let cut = Fault::StreamCut {
            after_chunks: Some(2),
            after: None,
        };
        let script = pace(frames(5), Some(&cut), &board);
        assert!(matches!(
            script.steps.as_slice(),
            [Step::Send(_), Step::Send(_), Step::Cut]
        ));
    }

    #[test]
    fn a_slow_stream_waits_before_every_frame() {
        let board = Switchboard::new(1);
        let slow = Fault::SlowStream {
            first_token: Duration::from_millis(100),
            inter_token: Duration::from_millis(10),
            jitter: 0.0,
        };
        let script = pace(frames(3), Some(&slow), &board);
        let waits: Vec<Duration> = script
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Wait(wait) => Some(*wait),
                _ => None,
            })
            .collect();
        assert_eq!(
            waits,
            [100, 10, 10].map(Duration::from_millis),
            "first token, then inter-token"
        );
    }
}
