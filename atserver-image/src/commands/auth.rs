//! `from`, `cram`, `pkam`, `pol` (atprotocol.md §3.4, §6).

use at_protocol::command::{FromParams, PkamParams};

use super::peer_auth;
use crate::crypto;
use crate::error::AtError;
use crate::keystore::{read, Read, AT_SECRET, PKAM_PUBLIC_KEY};
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, AuthMethod, Challenge, Enrollment, Session};
use crate::util::constant_time_eq;
use at_protocol::crypto::{HashingAlgo, SigningAlgo};
use at_protocol::AtSign;
use at_protocol::ErrorCode;

/// Challenges are valid this long (§6.2).
const CHALLENGE_TTL_MS: i64 = 60_000;

pub async fn from(s: &mut Session, p: FromParams) -> CmdResult {
    let who = p.atsign.as_str().to_string();
    if let Some(version) = p.client_config.as_ref().and_then(|c| c.version.as_deref()) {
        s.json_errors = version_above_3_0_37(version);
    }
    if super::config_verb::is_blocked(s, &who).await? {
        return Err(
            AtError::new(ErrorCode::BlockedConnection, format!("{who} is blocked")).closing(),
        );
    }
    if who != s.atsign() {
        return from_peer(s, who).await;
    }
    let now = s.shared.clock.now_millis();
    let logged = who.clone();
    s.shared
        .store
        .call(move |db| db.log_access(Some(&logged), None, "from", now))
        .await?;
    let text = format!("{}{}:{}", s.session_id, who, uuid::Uuid::new_v4());
    s.challenge = Some(Challenge {
        atsign: who,
        text: text.clone(),
        created_at: now,
    });
    Ok(Reply::Data(text))
}

/// `from:@peer` (§6.5 step 4): the client certificate must name the peer's host; the reply is
/// the proof challenge the peer signs for `pol`.
async fn from_peer(s: &mut Session, who: String) -> CmdResult {
    let peer = AtSign::parse(&who).map_err(|e| AtError::syntax(e.to_string()))?;
    let checked =
        peer_auth::check_peer_certificate(&s.shared, &peer, s.peer_certs.as_deref()).await;
    if let Err(e) = checked {
        s.shared.peers.metrics.pol("inbound", false);
        tracing::info!(peer = %who, addr = %s.peer_addr, "peer certificate refused");
        return Err(e);
    }
    let now = s.shared.clock.now_millis();
    // A bound challenge (3.16) names this atSign, so a prover never signs it for another
    // server; a legacy prover signs it unchanged.
    let me = AtSign::parse(s.atsign()).map_err(|e| AtError::internal(e.to_string()))?;
    let challenge = at_protocol::client::bound_challenge(&me, &uuid::Uuid::new_v4().to_string());
    let reply = format!("proof:{}{}:{}", s.session_id, who, challenge);
    s.challenge = Some(Challenge {
        atsign: who,
        text: challenge,
        created_at: now,
    });
    Ok(Reply::Data(reply))
}

fn version_above_3_0_37(v: &str) -> bool {
    let parts: Vec<u64> = v
        .split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect();
    let get = |i: usize| parts.get(i).copied().unwrap_or(0);
    (get(0), get(1), get(2)) > (3, 0, 37)
}

/// The pending challenge, if fresh.
fn take_challenge(s: &Session) -> Result<String, AtError> {
    let c = s.challenge.as_ref().ok_or_else(|| {
        AtError::new(
            ErrorCode::KeyNotFound,
            "no from: challenge on this connection",
        )
    })?;
    if s.shared.clock.now_millis() - c.created_at > CHALLENGE_TTL_MS {
        return Err(AtError::unauthenticated(
            "challenge expired; send from: again",
        ));
    }
    Ok(c.text.clone())
}

fn throttle_check(s: &Session) -> Result<(), AtError> {
    if !s.shared.throttle.allowed(s.peer_addr.ip()) {
        return Err(AtError::new(
            ErrorCode::TooManyRequests,
            "too many failed authentication attempts; try again later",
        ));
    }
    Ok(())
}

fn failed(s: &mut Session, msg: &str) -> AtError {
    s.auth_failures += 1;
    s.shared.throttle.record_failure(s.peer_addr.ip());
    s.shared.metrics.auth_failures.inc();
    tracing::info!(peer = %s.peer_addr, "authentication failed");
    let e = AtError::unauthenticated(msg.to_string());
    if s.auth_failures >= s.shared.config.limits.auth_failures_per_connection {
        e.closing()
    } else {
        e
    }
}

pub async fn cram(s: &mut Session, digest: &str) -> CmdResult {
    throttle_check(s)?;
    let challenge = take_challenge(s)?;
    let secret = match read(&s.shared, AT_SECRET).await? {
        Read::Active(r) => r.value.unwrap_or_default(),
        _ => return Err(AtError::not_found(AT_SECRET)),
    };
    let expected = crypto::cram_digest(&secret, &challenge);
    if !constant_time_eq(
        expected.as_bytes(),
        digest.trim().to_ascii_lowercase().as_bytes(),
    ) {
        return Err(failed(s, "Authentication Failed"));
    }
    s.challenge = None;
    s.set_auth(Auth::Owner {
        method: AuthMethod::Cram,
        enrollment: None,
    });
    Ok(Reply::data("success"))
}

/// The algorithms a `pkam:` names (defaults rsa2048 + sha256).
struct PkamArgs<'a> {
    signing: SigningAlgo,
    hashing: HashingAlgo,
    enrollment: Option<&'a str>,
}

fn pkam_args(p: &PkamParams) -> Result<PkamArgs<'_>, AtError> {
    let signing = match &p.signing_algo {
        Some(a) => a
            .parse()
            .map_err(|_| AtError::syntax("unsupported signingAlgo"))?,
        None => SigningAlgo::Rsa2048,
    };
    let hashing = match &p.hashing_algo {
        Some(a) => a
            .parse()
            .map_err(|_| AtError::syntax("unsupported hashingAlgo"))?,
        None => HashingAlgo::Sha256,
    };
    Ok(PkamArgs {
        signing,
        hashing,
        enrollment: p.enrollment_id.as_deref(),
    })
}

pub async fn pkam(s: &mut Session, p: PkamParams) -> CmdResult {
    let args = pkam_args(&p)?;
    throttle_check(s)?;
    let challenge = take_challenge(s)?;
    // With an enrollment the record's algorithm decides (3.16), so one key blob is never read
    // under an algorithm its enrollment did not name; legacy PKAM keeps the command's.
    let (public_key, enrollment, signing) = match args.enrollment {
        Some(id) => {
            let (key, namespaces, recorded) = super::enroll::record::approved_key(s, id).await?;
            (
                key,
                Some(Enrollment {
                    id: id.to_string(),
                    namespaces,
                }),
                recorded,
            )
        }
        None => match read(&s.shared, PKAM_PUBLIC_KEY).await? {
            Read::Active(r) => (r.value.unwrap_or_default(), None, args.signing),
            _ => return Err(AtError::not_found(PKAM_PUBLIC_KEY)),
        },
    };
    let sig = p.signature.clone();
    let verified = tokio::task::spawn_blocking(move || {
        crypto::verify_pkam(&public_key, &challenge, &sig, signing, args.hashing)
    })
    .await
    .map_err(|_| AtError::internal("verification task failed"))?;
    if verified.is_err() {
        return Err(failed(s, "pkam authentication failed"));
    }
    s.challenge = None;
    let now = s.shared.clock.now_millis();
    s.shared
        .store
        .call(move |db| db.log_access(None, None, "pkam", now))
        .await?;
    s.set_auth(Auth::Owner {
        method: AuthMethod::Pkam,
        enrollment,
    });
    Ok(Reply::data("success"))
}

/// `pol` (§6.5 step 7): verify the peer's published signature over our challenge.
pub async fn pol(s: &mut Session) -> CmdResult {
    let challenge = match &s.challenge {
        Some(c) if c.atsign != s.atsign() => c.clone(),
        _ => return Err(AtError::internal("pol without a from:@peer challenge").closing()),
    };
    let peer = AtSign::parse(&challenge.atsign).map_err(|e| AtError::syntax(e.to_string()))?;
    // A challenge is single-use, whatever the outcome.
    s.challenge = None;
    let fresh = s.shared.clock.now_millis() - challenge.created_at <= CHALLENGE_TTL_MS;
    let verified = if fresh {
        peer_auth::verify_pol(&s.shared, &peer, &s.session_id, &challenge.text).await
    } else {
        Err(AtError::unauthenticated("Pol Authentication Failed"))
    };
    s.shared.peers.metrics.pol("inbound", verified.is_ok());
    verified?;
    s.set_auth(Auth::Peer(challenge.atsign));
    Ok(Reply::PolOk(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_above_3_0_37("3.0.38"));
        assert!(version_above_3_0_37("3.1.0"));
        assert!(!version_above_3_0_37("3.0.37"));
        assert!(!version_above_3_0_37("2.9"));
    }
}
