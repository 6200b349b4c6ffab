//! The `application/vnd.amazon.eventstream` binary framing that Bedrock's streaming answers
//! use: each message is its total length and its headers' length (big-endian u32s), a CRC32
//! of those 8 bytes, the headers, the payload, and a CRC32 of everything before it.
//!
//! Written here rather than taken from `aws-smithy-eventstream`: the fake only encodes, with
//! string headers only, which is these 40 lines, where the crate brings the AWS SDK's type
//! tree. botocore's own decoder checks every frame in tests/python/llm_bedrock.py.

use bytes::Bytes;

/// The value type tag of a string header.
const STRING: u8 = 7;

/// One message with string `headers` and `payload`.
pub(super) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut encoded_headers = Vec::with_capacity(96);
    for (name, value) in headers {
        encoded_headers.push(name.len() as u8);
        encoded_headers.extend_from_slice(name.as_bytes());
        encoded_headers.push(STRING);
        encoded_headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        encoded_headers.extend_from_slice(value.as_bytes());
    }
    // Prelude (8) + its CRC (4) + headers + payload + message CRC (4).
    let total = 16 + encoded_headers.len() + payload.len();
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&(total as u32).to_be_bytes());
    frame.extend_from_slice(&(encoded_headers.len() as u32).to_be_bytes());
    frame.extend_from_slice(&crc32fast::hash(&frame).to_be_bytes());
    frame.extend_from_slice(&encoded_headers);
    frame.extend_from_slice(payload);
    let crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(frame)
}

/// An event named `event_type` carrying `json`.
pub(super) fn event(event_type: &str, json: &serde_json::Value) -> Bytes {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json.to_string().as_bytes(),
    )
}

/// An exception in the stream (`internalServerException`, `throttlingException`, …).
pub(super) fn exception(exception_type: &str, message_text: &str) -> Bytes {
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        serde_json::json!({ "message": message_text })
            .to_string()
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_its_lengths_and_both_crcs() {
        let frame = message(&[(":event-type", "messageStop")], b"{}");
        let total = u32::from_be_bytes(frame[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(frame[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, frame.len());
        assert_eq!(headers, 1 + 11 + 1 + 2 + 11);
        let prelude_crc = u32::from_be_bytes(frame[8..12].try_into().unwrap());
        assert_eq!(prelude_crc, crc32fast::hash(&frame[..8]));
        let end = frame.len() - 4;
        let message_crc = u32::from_be_bytes(frame[end..].try_into().unwrap());
        assert_eq!(message_crc, crc32fast::hash(&frame[..end]));
        assert_eq!(&frame[12 + headers..end], b"{}");
    }
}
