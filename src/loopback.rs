//! The one check that faultline talks only to this machine: a URL (`--attach`, `[target] url`,
//! `--fakes`, `init --url`, a Redis upstream) is parsed with a real URL parser (the `url`
//! crate, as browsers parse them: `http://localhost:1@0.0.0.0/` has host 0.0.0.0, not
//! localhost), its host is resolved, and every address it resolves to must be loopback.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

/// How long a host name may take to resolve (a name that must go to DNS is not local anyway).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A URL faultline may send traffic to: `scheme://` (`http` or `redis`) on a host whose every
/// address is loopback, without credentials, query or fragment. Returns it normalized
/// without a trailing slash; else why not, in words that follow "URL … ".
pub fn check(text: &str, scheme: &str) -> Result<String, String> {
    let text = text.trim();
    let example = format!("{scheme}://127.0.0.1:3000");
    let url = url::Url::parse(text).map_err(|e| {
        format!(
            "\"{}\" is not a URL ({e}); give one like {example}",
            cut(text)
        )
    })?;
    if url.scheme() != scheme {
        return Err(format!(
            "\"{}\" is {}://; faultline speaks plain {scheme}:// to this machine, e.g. {example}",
            cut(text),
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "\"{}\" holds a user name or password before `@`; drop it and give the host alone, \
             e.g. {example}",
            cut(text)
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "\"{}\" has a query or fragment; give the base URL, e.g. {example}",
            cut(text)
        ));
    }
    let addresses: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => resolve(name)?,
        None => Vec::new(),
    };
    let outside: Vec<String> = addresses
        .iter()
        .filter(|ip| !ip.is_loopback())
        .map(IpAddr::to_string)
        .collect();
    if addresses.is_empty() || !outside.is_empty() {
        let host = cut(url.host_str().unwrap_or("missing"));
        let seen = match url.host() {
            Some(url::Host::Domain(_)) if !outside.is_empty() => {
                format!("host {host} resolves to {}", outside.join(", "))
            }
            _ => format!("host {host}"),
        };
        return Err(format!(
            "\"{}\" is not on this machine ({seen}); faultline sends traffic only to this \
             machine: use 127.0.0.1, localhost or [::1], e.g. {example}",
            cut(text),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Every address `name` resolves to, in a bounded time.
fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
    let owned = host.to_string();
    let name = cut(host);
    let (tx, rx) = std::sync::mpsc::channel();
    // getaddrinfo cannot be cancelled: a thread left waiting on DNS ends on its own.
    std::thread::spawn(move || {
        let resolved = (owned.as_str(), 0u16)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>());
        let _ = tx.send(resolved);
    });
    match rx.recv_timeout(RESOLVE_TIMEOUT) {
        Ok(Ok(addresses)) => Ok(addresses),
        Ok(Err(e)) => Err(format!(
            "host {name} does not resolve ({e}); use 127.0.0.1, localhost or [::1]"
        )),
        Err(_) => Err(format!(
            "host {name} did not resolve within {}s; use 127.0.0.1, localhost or [::1]",
            RESOLVE_TIMEOUT.as_secs()
        )),
    }
}

/// At most 200 characters of what the user gave, for echoing in an error.
fn cut(text: &str) -> String {
    crate::scenario::echo(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_pass_in_every_spelling() {
        for (given, normal) in [
            ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://[::1]:9/api", "http://[::1]:9/api"),
            ("http://127.9.9.9:1", "http://127.9.9.9:1"),
            ("http://2130706433:80", "http://127.0.0.1"),
        ] {
            assert_eq!(check(given, "http").unwrap(), normal);
        }
    }

    #[test]
    fn userinfo_cannot_smuggle_another_host() {
        let error = check("http://localhost:1@0.0.0.0:19998", "http").unwrap_err();
        assert!(error.contains("user name or password"), "{error}");
        let error = check("http://localhost@10.0.0.1", "http").unwrap_err();
        assert!(error.contains("user name"), "{error}");
    }

    #[test]
    fn other_hosts_schemes_and_shapes_are_refused() {
        for bad in [
            "http://0.0.0.0:19998",
            "http://10.0.0.1:80",
            "http://[::]:80",
            "http://[::ffff:10.0.0.1]:80",
            "https://127.0.0.1:443",
            "127.0.0.1:3000",
            "http://127.0.0.1:3000/?x=1",
            "http://no-such-host.invalid",
        ] {
            assert!(check(bad, "http").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_long_url_is_cut_in_the_error() {
        let long = format!("http://{}.example/", "a".repeat(100_000));
        assert!(check(&long, "http").unwrap_err().len() < 1_000);
    }
}
