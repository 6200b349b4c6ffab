//! The weather fake: `GET /weather?city=Paris` answers
//! `{"city","temperature_c","condition","observed_at"}`, the same temperature and condition
//! for a city every time, so answers can be checked.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{error, status_fault_reply};
use crate::fakes::fault::Switchboard;
use crate::fakes::http::{self, Reply, Request, Responder};
use crate::fakes::journal::Journal;
use crate::fakes::text::hash;
use crate::fakes::{FakeError, FakeHandle};

/// Starts the weather fake on `127.0.0.1` at an ephemeral port.
pub async fn start_weather(
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    http::serve("weather", Weather, switchboard, journal).await
}

/// Like [`start_weather`], on a given loopback address.
pub async fn start_weather_on(
    addr: std::net::SocketAddr,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    http::serve_on(addr, "weather", Weather, switchboard, journal).await
}

struct Weather;

const CONDITIONS: &[&str] = &[
    "sunny",
    "partly cloudy",
    "cloudy",
    "light rain",
    "rain",
    "thunderstorms",
    "fog",
    "snow",
];

impl Responder for Weather {
    fn answer(&self, request: &Request) -> Reply {
        match (&request.method, request.uri.path()) {
            (&Method::GET, "/weather") => match request.query_param("city") {
                Some(city) if !city.trim().is_empty() => report(city.trim()),
                _ => error(StatusCode::BAD_REQUEST, "missing query parameter 'city'"),
            },
            (_, "/weather") => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (_, path) => error(StatusCode::NOT_FOUND, &format!("no route {path}")),
        }
    }

    fn fault_reply(
        &self,
        _request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        status_fault_reply(status, retry_after)
    }
}

/// The weather in `city`: temperature and condition depend only on the city's name (any case);
/// `observed_at` is the current hour, as a real service's last observation would be.
fn report(city: &str) -> Reply {
    let h = hash(0, &city.to_lowercase());
    // -10.0 ..= 34.9 °C in tenths.
    let temperature_c = -10.0 + (h % 450) as f64 / 10.0;
    let condition = CONDITIONS[((h >> 16) % CONDITIONS.len() as u64) as usize];
    Reply::json(
        StatusCode::OK,
        &json!({
            "city": city,
            "temperature_c": temperature_c,
            "condition": condition,
            "observed_at": this_hour(),
        }),
    )
}

/// The current UTC hour in RFC 3339, e.g. `2025-06-01T14:00:00Z`.
fn this_hour() -> String {
    let now = time::OffsetDateTime::now_utc();
    let hour = now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("valid hour"));
    hour.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_city_always_gets_the_same_weather_whatever_its_case() {
        let body =
            |city| -> serde_json::Value { serde_json::from_slice(&report(city).body).unwrap() };
        let (paris, shouting) = (body("Paris"), body("PARIS"));
        assert_eq!(paris["temperature_c"], shouting["temperature_c"]);
        assert_eq!(paris["condition"], shouting["condition"]);
        assert!(paris["observed_at"].as_str().unwrap().ends_with(":00:00Z"));
    }
}
