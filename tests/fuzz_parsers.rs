//! Seeded mutation fuzzing of every parser that reads untrusted input (issue 16): the scenario
//! parser, the RESP request parser, the OTLP decoders (protobuf and JSON), the control API's
//! rule parser and the Prometheus exposition parser. Each starts from a corpus of real inputs
//! (the built-in scenarios, real RESP frames, real exports) and mutates it with a seeded RNG,
//! so every run repeats the same inputs, and a failure names its seed and case.
//!
//! cargo-fuzz needs a nightly toolchain, which CI does not have; this runs on stable in the
//! normal test command. Cases per parser: 10,000 (about 6 s for all five in a debug build;
//! FAULTLINE_FUZZ_CASES changes it). The check: no panic, and no input takes over a second.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 0x16_f022;
/// No parser may spend this long on one input (generous: debug build, shared machine).
const SLOW: Duration = Duration::from_secs(1);

fn cases() -> usize {
    std::env::var("FAULTLINE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Bytes that tend to matter to these grammars.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"'",
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"\0",
    b"\\",
    b"*-1\r\n",
    b"$-1\r\n",
    b"*2147483648\r\n",
    b"$99999999999\r\n",
    b"-",
    b"1e309",
    b"99999999999999999999",
    b"NaN",
    b"+Inf",
    b"\xff\xfe",
    b"\xe9",
    b"# TYPE x counter\n",
    b"[[faults]]\n",
    b"[load]\n",
    b"\"0s\"",
    b"\"584942418y\"",
    b"{}",
    b"[]",
    b"null",
];

/// One mutation of `input` (maybe spliced with another corpus item).
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.random_range(0..=out.len())
        };
        match rng.random_range(0..7) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.random_range(1..64)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => out.truncate(at),
            4 if !out.is_empty() => {
                let end = (at + rng.random_range(1..128)).min(out.len());
                let piece = out[at.min(end)..end].to_vec();
                out.splice(
                    at..at,
                    piece
                        .iter()
                        .copied()
                        .cycle()
                        .take(piece.len() * rng.random_range(1..8)),
                );
            }
            5 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let from = rng.random_range(0..=other.len());
                out.splice(at..at, other[from..].iter().copied().take(256));
            }
            _ => {
                let byte: u8 = rng.random();
                out.insert(at, byte);
            }
        }
    }
    out
}

/// Runs `parse` over the corpus and `cases()` mutations of it; fails on a panic or a slow case.
fn fuzz(name: &str, corpus: Vec<Vec<u8>>, parse: impl Fn(&[u8])) {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ name.len() as u64);
    let mut slowest = Duration::ZERO;
    let total = cases();
    for case in 0..corpus.len() + total {
        let input = if case < corpus.len() {
            corpus[case].clone()
        } else {
            let base = &corpus[rng.random_range(0..corpus.len())];
            mutate(&mut rng, base, &corpus)
        };
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&input)));
        let took = started.elapsed();
        slowest = slowest.max(took);
        let shown = String::from_utf8_lossy(&input[..input.len().min(300)]).into_owned();
        assert!(
            outcome.is_ok(),
            "{name}: case {case} (seed {SEED:#x}) panicked on {shown:?}"
        );
        assert!(
            took < SLOW,
            "{name}: case {case} took {took:?} on {shown:?}"
        );
    }
    eprintln!(
        "{name}: {} inputs, slowest {slowest:?}",
        corpus.len() + total
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_scenario_parser_never_panics_on_mutated_scenarios() {
    let corpus: Vec<Vec<u8>> = faultline::scenario::catalog::names()
        .into_iter()
        .filter_map(faultline::scenario::catalog::get)
        .map(|text| text.as_bytes().to_vec())
        .collect();
    assert!(corpus.len() >= 10);
    fuzz("scenario", corpus, |input| {
        let _ = faultline::scenario::parse_scenario(&text(input), "fuzz.toml");
    });
}

#[test]
fn the_resp_parser_never_panics_on_mutated_frames() {
    let corpus: Vec<Vec<u8>> = [
        &b"*1\r\n$4\r\nPING\r\n"[..],
        b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$5\r\nvalue\r\n",
        b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n",
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n60\r\n",
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
        b"PING\r\n",
        b"SET k \"quoted value\"\r\n",
        b"*0\r\n",
        b"\r\n",
    ]
    .iter()
    .map(|frame| frame.to_vec())
    .collect();
    fuzz("resp", corpus, |input| {
        // Parse as the server does: frame after frame until it needs more bytes or errs.
        let mut rest = input;
        while let Ok((_, used)) = faultline::fakes::redis::frame::parse_request(rest) {
            if used == 0 || used > rest.len() {
                break;
            }
            rest = &rest[used..];
        }
    });
}

#[test]
fn the_otlp_decoders_never_panic_on_mutated_exports() {
    use faultline::fakes::otlp::{
        any_value, decode_export, AnyValue, ExportTraceServiceRequest, KeyValue, ProtoSpan,
        ResourceSpans, ScopeSpans,
    };
    use prost::Message;
    let attribute = |key: &str, value: any_value::Value| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
    };
    let span = ProtoSpan {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "llm_attempt".into(),
        kind: 3,
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        attributes: vec![
            attribute("request.id", any_value::Value::StringValue("r-1".into())),
            attribute("http.request.resend_count", any_value::Value::IntValue(2)),
        ],
        ..ProtoSpan::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: vec![span],
            }],
        }],
    };
    let protobuf = request.encode_to_vec();
    let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","parentSpanId":"","name":"chat","startTimeUnixNano":"10","endTimeUnixNano":"20","status":{"code":2},"attributes":[{"key":"request.id","value":{"stringValue":"r-1"}},{"key":"n","value":{"intValue":"3"}},{"key":"a","value":{"arrayValue":{"values":[{"boolValue":true}]}}}]}]}]}]}"#;
    fuzz(
        "otlp protobuf",
        vec![protobuf.clone(), json.to_vec()],
        |input| {
            let _ = decode_export(input, true);
        },
    );
    fuzz("otlp json", vec![json.to_vec(), protobuf], |input| {
        let _ = decode_export(input, false);
    });
}

#[test]
fn the_control_api_rule_parser_never_panics_on_mutated_rules() {
    let corpus: Vec<Vec<u8>> = [
        r#"{"kind":"status","code":503,"rate":0.5}"#,
        r#"{"kind":"status","code":429,"retry_after":"1s","route":"/v1/chat"}"#,
        r#"{"kind":"delay","delay":"700ms","distribution":"log_normal"}"#,
        r#"{"kind":"hang"}"#,
        r#"{"kind":"stream_cut","after_chunks":3}"#,
        r#"{"kind":"slow_stream","chunk_delay":"200ms"}"#,
        r#"{"kind":"malformed","how":"truncated_json","first_attempts":2}"#,
        r#"{"kind":"rate_limit","requests_per_minute":60}"#,
        r#"{"kind":"reset"}"#,
    ]
    .iter()
    .map(|rule| rule.as_bytes().to_vec())
    .collect();
    fuzz("fault rule", corpus, |input| {
        let _ = faultline::fakes::fault::parse_rule(&text(input), 1);
    });
}

#[test]
fn the_prometheus_parser_never_panics_on_mutated_expositions() {
    let corpus = vec![br#"# HELP llm_tokens_total Tokens.
# TYPE llm_tokens_total counter
llm_tokens_total{direction="input",model="gpt-4o-mini"} 1234
llm_tokens_total{direction="output",model="gpt-4o-mini"} 567 1700000000000
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 3
http_request_duration_seconds_bucket{le="+Inf"} 5
http_request_duration_seconds_sum 0.42
http_request_duration_seconds_count 5
cache_hit_ratio NaN
escaped{path="a\"b\\c\nd"} -1.5e-3
"#
    .to_vec()];
    fuzz("prometheus", corpus, |input| {
        let _ = faultline::prometheus::parse_exposition(&text(input));
    });
}
