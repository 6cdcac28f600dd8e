//! Validation of registration fields. The host must be something every client can dial and verify:
//! a DNS name or an IPv4 literal (clients split `host:port` on its only colon, so IPv6 cannot work).

use std::net::{IpAddr, Ipv4Addr};

use at_protocol::AtSign;

use super::error::ApiError;

pub fn atsign(raw: &str) -> Result<AtSign, ApiError> {
    AtSign::parse(raw).map_err(|e| ApiError::bad_request("invalid_atsign", format!("{raw:?}: {e}")))
}

fn invalid_host(raw: &str, why: &str) -> ApiError {
    ApiError::bad_request("invalid_host", format!("host {raw:?} {why}"))
}

/// Returns the host lower-cased.
pub fn host(raw: &str) -> Result<String, ApiError> {
    if raw.parse::<Ipv4Addr>().is_ok() {
        return Ok(raw.to_owned());
    }
    if raw.parse::<IpAddr>().is_ok() || raw.starts_with('[') {
        return Err(invalid_host(
            raw,
            "is an IPv6 address; clients cannot parse host:port with more than one colon",
        ));
    }
    if raw.is_empty() {
        return Err(invalid_host(raw, "is empty"));
    }
    if raw.len() > 253 {
        return Err(invalid_host(raw, "is longer than 253 characters"));
    }
    let labels: Vec<&str> = raw.split('.').collect();
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid_host(
                raw,
                "has a DNS label that is empty or longer than 63 characters",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid_host(
                raw,
                "may contain only letters, digits, '-' and '.' (a DNS name or IPv4 address)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid_host(
                raw,
                "has a DNS label that starts or ends with '-'",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid_host(
            raw,
            "is neither a valid IPv4 address nor a DNS name (numeric last label)",
        ));
    }
    Ok(raw.to_ascii_lowercase())
}

pub fn port(raw: i64) -> Result<u16, ApiError> {
    u16::try_from(raw).ok().filter(|p| *p != 0).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_port",
            format!("port {raw} is not between 1 and 65535"),
        )
    })
}

pub const MAX_OWNER_CHARS: usize = 253;

pub fn owner(raw: &str) -> Result<String, ApiError> {
    let invalid =
        |why: &str| ApiError::bad_request("invalid_owner", format!("owner {raw:?} {why}"));
    if raw.trim().is_empty() {
        return Err(invalid("is empty"));
    }
    if raw.chars().count() > MAX_OWNER_CHARS {
        return Err(invalid("is longer than 253 characters"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            host("Alice.Fleet.example").ok().as_deref(),
            Some("alice.fleet.example")
        );
        assert!(host("127.0.0.1").is_ok());
        assert!(host("localhost").is_ok());
        for bad in [
            "",
            "::1",
            "[::1]",
            "a..b",
            "-a.example",
            "a_b.example",
            "1.2.3.999",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_and_owners() {
        assert_eq!(port(6464).ok(), Some(6464));
        assert!(port(0).is_err() && port(65536).is_err() && port(-1).is_err());
        assert!(owner("cluster-a/operator").is_ok());
        assert!(owner("").is_err() && owner("a b").is_err());
    }
}
