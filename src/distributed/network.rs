//! Where a distributed run may send traffic. By default only to this machine (loopback, as
//! [`crate::loopback`] decides for every other URL faultline takes); beyond it only to the
//! address ranges the worker's own `faultline.toml` allows in `[network] allow`. A worker
//! reads the ranges from its own file, never from the coordinator: a coordinator that is not
//! trusted must not be able to widen them.

use std::net::{IpAddr, ToSocketAddrs};

use ipnet::IpNet;

/// The ranges `[network] allow` of the faultline.toml at `config` (given, or found in the
/// working directory) allows; empty (loopback only) without one.
pub fn allowed_ranges(config: Option<&std::path::Path>) -> Result<Vec<IpNet>, String> {
    let found = std::path::Path::new(crate::scenario::config::FILE_NAME);
    let path = match config {
        Some(path) => path,
        None if found.exists() => found,
        None => return Ok(Vec::new()),
    };
    crate::scenario::load_config(path)
        .map(|config| config.network_allow)
        .map_err(|e| e.to_string())
}

/// `url` if faultline may send traffic to it: on loopback, or with every address its host
/// resolves to inside `allow`. Else why not, saying what to change.
pub fn check(url: &str, allow: &[IpNet]) -> Result<String, String> {
    let loopback = match crate::loopback::check(url, "http") {
        Ok(url) => return Ok(url),
        Err(why) => why,
    };
    if allow.is_empty() {
        return Err(format!(
            "{loopback}; to let a distributed run's workers reach a service in your cluster, \
             add its address range to [network] allow in faultline.toml (e.g. allow = \
             [\"10.0.0.0/8\"])"
        ));
    }
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| format!("\"{}\" is not a URL ({e})", crate::scenario::echo(url)))?;
    if parsed.scheme() != "http" || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "\"{}\" must be a plain http:// URL without a user name or password",
            crate::scenario::echo(url)
        ));
    }
    let addresses: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => (name, 0u16)
            .to_socket_addrs()
            .map_err(|e| format!("the host {name} of {url} does not resolve: {e}"))?
            .map(|addr| addr.ip())
            .collect(),
        None => Vec::new(),
    };
    let outside: Vec<String> = addresses
        .iter()
        .filter(|ip| !ip.is_loopback() && !allow.iter().any(|range| range.contains(*ip)))
        .map(IpAddr::to_string)
        .collect();
    if addresses.is_empty() || !outside.is_empty() {
        let ranges: Vec<String> = allow.iter().map(IpNet::to_string).collect();
        return Err(format!(
            "\"{}\" is outside the ranges this run allows (loopback and {}): {} is not in \
             them; add its range to [network] allow in faultline.toml if it is your service",
            crate::scenario::echo(url),
            ranges.join(", "),
            if outside.is_empty() {
                "its host".to_string()
            } else {
                outside.join(", ")
            }
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pure address checks: nothing is sent anywhere.
    #[test]
    fn only_loopback_passes_unless_a_range_is_allowed() {
        assert_eq!(
            check("http://127.0.0.1:8080/", &[]).unwrap(),
            "http://127.0.0.1:8080"
        );
        let refused = check("http://10.1.2.3:8080", &[]).unwrap_err();
        assert!(refused.contains("[network] allow"), "{refused}");
        let cluster: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(check("http://10.1.2.3:8080", &cluster).is_ok());
        let outside = check("http://192.168.1.5:8080", &cluster).unwrap_err();
        assert!(outside.contains("192.168.1.5 is not in them"), "{outside}");
        assert!(check("http://user:pw@10.1.2.3/", &cluster).is_err());
    }
}
