//! The verifier's side of §6.5: `from:@peer` requires a client certificate naming the peer's
//! host exactly as the atDirectory publishes it, and `pol` checks the peer's signature over our
//! challenge with the signing key its own server publishes.

use std::net::IpAddr;

use at_protocol::crypto::{public_key_from_b64, verify_data_signature};
use at_protocol::AtSign;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::context::Shared;
use crate::error::AtError;

use crate::peer::connector::{timed, PeerError};

/// True when the certificate's SAN holds `host` exactly: a DNS name equal ignoring case (no
/// wildcards, no substrings) or, for an IP address, an equal IP entry (§13.10).
pub fn certificate_names_host(cert: &CertificateDer<'_>, host: &str) -> bool {
    let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) else {
        return false;
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return false;
    };
    let host = host.trim_end_matches('.');
    let wanted_ip: Option<IpAddr> = host.parse().ok();
    san.value.general_names.iter().any(|name| match name {
        GeneralName::DNSName(dns) => {
            wanted_ip.is_none() && dns.trim_end_matches('.').eq_ignore_ascii_case(host)
        }
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            };
            ip.is_some() && ip == wanted_ip
        }
        _ => false,
    })
}

fn refused(reason: impl std::fmt::Display) -> AtError {
    AtError::unauthenticated(format!("Certificate Verification Failed: {reason}"))
}

/// `from:@peer`: the TLS layer already validated the chain against our CA bundle; here the leaf
/// must be issued for the host the atDirectory names for `peer`.
pub async fn check_peer_certificate(
    shared: &Shared,
    peer: &AtSign,
    certs: Option<&[CertificateDer<'static>]>,
) -> Result<(), AtError> {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return Err(refused("no client certificate presented"));
    };
    let (host, _) = shared
        .peers
        .resolve(peer)
        .await
        .map_err(|e| refused(format!("cannot resolve {peer}: {e}")))?;
    if certificate_names_host(leaf, &host) {
        Ok(())
    } else {
        Err(refused(format!("certificate is not issued for {host}")))
    }
}

/// `pol`: reads `public:<sessionId>@peer` (the signature) and `signing_publickey@peer` from the
/// peer's server over a fresh anonymous connection and verifies the signature over `challenge`.
pub async fn verify_pol(
    shared: &Shared,
    peer: &AtSign,
    session_id: &str,
    challenge: &str,
) -> Result<(), AtError> {
    let peers = &shared.peers;
    let limit = peers.settings.handshake_timeout;
    let wrap = |source| PeerError::Peer {
        atsign: peer.to_string(),
        source,
    };
    let fetched = async {
        let mut conn = peers.connect(peer).await?;
        let signature = timed(limit, "reading the pol signature", async {
            conn.send_data(&format!("lookup:{session_id}{peer}"))
                .await
                .map_err(wrap)
        })
        .await?;
        let key = timed(limit, "reading the peer's signing key", async {
            conn.send_data(&format!("lookup:signing_publickey{peer}"))
                .await
                .map_err(wrap)
        })
        .await?;
        let _ = conn.close().await;
        Ok::<_, PeerError>((signature, key))
    }
    .await;
    let failed = |why: String| {
        tracing::info!(%peer, why, "pol failed");
        AtError::unauthenticated("Pol Authentication Failed")
    };
    let (signature, key) = fetched.map_err(|e| failed(e.to_string()))?;
    let challenge = challenge.to_string();
    let verified = tokio::task::spawn_blocking(move || {
        let key = public_key_from_b64(key.trim()).map_err(|e| e.to_string())?;
        verify_data_signature(&key, challenge.as_bytes(), signature.trim())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| AtError::internal("verification task failed"))?;
    verified.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        cert.der().clone()
    }

    #[test]
    fn exact_san_match_only() {
        let cert = cert_for(&["alice.example.com", "127.0.0.2"]);
        assert!(certificate_names_host(&cert, "alice.example.com"));
        assert!(certificate_names_host(&cert, "ALICE.example.com."));
        assert!(certificate_names_host(&cert, "127.0.0.2"));
        // The reference's substring match would accept these.
        assert!(!certificate_names_host(&cert, "example.com"));
        assert!(!certificate_names_host(&cert, "alice.example.co"));
        assert!(!certificate_names_host(&cert, "127.0.0.22"));
        assert!(!certificate_names_host(&cert, "127.0.0.3"));
        let wildcard = cert_for(&["*.example.com"]);
        assert!(!certificate_names_host(&wildcard, "alice.example.com"));
    }
}
