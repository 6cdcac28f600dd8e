//! Authentication flows over an [`AtConnection`] (§6): CRAM, PKAM, and the `from:` + `pol` pieces a
//! server uses to prove itself to a peer.

use crate::atsign::AtSign;
use crate::crypto::{cram_digest, HashingAlgo, PkamSigner, SigningAlgo};
use crate::response::{Prompt, Reply};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::connection::AtConnection;
use super::error::ClientError;

/// The `pkam:` command for a signature (§3.4). RSA with SHA-256 and no enrollment is the bare
/// `pkam:<sig>` every client understands; anything else names its algorithms explicitly.
pub fn pkam_command(
    signing: SigningAlgo,
    hashing: HashingAlgo,
    enrollment_id: Option<&str>,
    signature: &str,
) -> String {
    let mut cmd = String::from("pkam:");
    if signing == SigningAlgo::MlDsa65 {
        // ML-DSA hashes internally (SHAKE256): a hashingAlgo would say nothing true.
        cmd.push_str(&format!("signingAlgo:{signing}:"));
    } else if (signing, hashing) != (SigningAlgo::Rsa2048, HashingAlgo::Sha256) {
        cmd.push_str(&format!("signingAlgo:{signing}:hashingAlgo:{hashing}:"));
    }
    if let Some(id) = enrollment_id {
        cmd.push_str(&format!("enrollmentId:{id}:"));
    }
    cmd.push_str(signature);
    cmd
}

/// The reply to `from:@me` sent to another atSign's server (§6.5 step 4):
/// `proof:<sessionId>@me:<challenge>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolChallenge {
    /// `<sessionId>@me`, e.g. `_6f…@bob`.
    pub session_key: String,
    /// The text to sign, verbatim (a UUID, or a colon-free `pol1.…` bound challenge).
    pub challenge: String,
}

impl PolChallenge {
    /// Parses the text after `data:`.
    pub fn parse(data: &str) -> Result<Self, ClientError> {
        let unexpected = || ClientError::UnexpectedReply {
            step: "reading the proof challenge of `from`".into(),
            reply: data.to_owned(),
        };
        let rest = data.trim().strip_prefix("proof:").ok_or_else(unexpected)?;
        let (session_key, challenge) = rest.split_once(':').ok_or_else(unexpected)?;
        if session_key.is_empty() || challenge.trim().is_empty() || !session_key.contains('@') {
            return Err(unexpected());
        }
        Ok(Self {
            session_key: session_key.to_owned(),
            challenge: challenge.trim().to_owned(),
        })
    }

    /// The key under which the prover publishes its signature (TTL 60 s) for the verifier to
    /// `lookup`: `public:<sessionId>@me`.
    pub fn signature_key(&self) -> String {
        format!("public:{}", self.session_key)
    }
}

/// What a pol challenge says about the atSign that issued it (3.16 bound challenges, §6.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeBinding {
    /// A legacy challenge (a bare UUID): it names nobody and is signed as it is.
    Unbound,
    /// `pol1.…` naming this verifier; a prover signs it only if it dialled that atSign.
    Bound(AtSign),
    /// `pol1.…` that does not decode to a JSON object with an atSign in `v`.
    Malformed,
}

/// A bound challenge as a verifier issues it: `pol1.<base64url(JSON {"v":"@verifier","n":nonce})>`
/// without padding, so it has no colon and legacy provers sign it unchanged.
pub fn bound_challenge(verifier: &AtSign, nonce: &str) -> String {
    let body = serde_json::json!({"v": verifier.as_str(), "n": nonce}).to_string();
    format!("pol1.{}", URL_SAFE_NO_PAD.encode(body))
}

/// Reads the binding of a challenge (see [`bound_challenge`]).
pub fn challenge_binding(challenge: &str) -> ChallengeBinding {
    let Some(token) = challenge.strip_prefix("pol1.") else {
        return ChallengeBinding::Unbound;
    };
    let bound = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| {
            json.get("v")
                .and_then(serde_json::Value::as_str)
                .and_then(|v| AtSign::parse(v).ok())
        });
    bound.map_or(ChallengeBinding::Malformed, ChallengeBinding::Bound)
}

impl AtConnection {
    /// `from:<atsign>` and returns the challenge (everything after `data:`, trimmed). Works on an
    /// already authenticated connection too (re-authentication, atsdk §8).
    pub async fn from(&mut self, atsign: &AtSign) -> Result<String, ClientError> {
        let data = self.send_data(&format!("from:{atsign}")).await?;
        Ok(data.trim().to_owned())
    }

    /// CRAM (§6.1): `from`, then `cram:<sha512hex(secret ‖ challenge)>`.
    pub async fn authenticate_cram(
        &mut self,
        atsign: &AtSign,
        secret: &str,
    ) -> Result<(), ClientError> {
        let challenge = self.from(atsign).await?;
        let digest = cram_digest(secret, &challenge);
        self.expect_success(&format!("cram:{digest}"), "cram")
            .await?;
        self.prompt = Prompt::Owner(atsign.clone());
        Ok(())
    }

    /// PKAM (§6.2, APKAM with `enrollment_id`), signing with SHA-256.
    pub async fn authenticate_pkam(
        &mut self,
        atsign: &AtSign,
        signer: &PkamSigner,
        enrollment_id: Option<&str>,
    ) -> Result<(), ClientError> {
        self.authenticate_pkam_with(atsign, signer, HashingAlgo::Sha256, enrollment_id)
            .await
    }

    /// PKAM with an explicit hashing algorithm (RSA only; ECC always uses SHA-256).
    pub async fn authenticate_pkam_with(
        &mut self,
        atsign: &AtSign,
        signer: &PkamSigner,
        hashing: HashingAlgo,
        enrollment_id: Option<&str>,
    ) -> Result<(), ClientError> {
        let challenge = self.from(atsign).await?;
        let signature = signer.sign(hashing, challenge.as_bytes());
        let hashing = match signer.algo() {
            SigningAlgo::EccSecp256r1 | SigningAlgo::MlDsa65 => HashingAlgo::Sha256,
            SigningAlgo::Rsa2048 => hashing,
        };
        let command = pkam_command(signer.algo(), hashing, enrollment_id, &signature);
        self.expect_success(&command, "pkam").await?;
        self.prompt = Prompt::Owner(atsign.clone());
        Ok(())
    }

    /// Server-to-server step 1 (§6.5): `from:@me` on a peer's server, returning the proof challenge.
    /// The caller signs it with its server signing key and publishes the signature under
    /// [`PolChallenge::signature_key`] before calling [`Self::pol`].
    pub async fn from_peer(&mut self, me: &AtSign) -> Result<PolChallenge, ClientError> {
        let data = self.send_data(&format!("from:{me}")).await?;
        PolChallenge::parse(&data)
    }

    /// Server-to-server step 2: `pol`. Succeeds only with the reply `@me@`; the connection then
    /// serves `me` as a peer.
    pub async fn pol(&mut self, me: &AtSign) -> Result<(), ClientError> {
        match self.send_pol().await? {
            Reply::Pol(who) if &who == me => {
                self.prompt = Prompt::Peer(me.clone());
                Ok(())
            }
            Reply::Error { code, message } => Err(ClientError::Server { code, message }),
            other => Err(ClientError::UnexpectedReply {
                step: "reading the reply to `pol`".into(),
                reply: format!("{other:?}"),
            }),
        }
    }

    async fn expect_success(&mut self, command: &str, verb: &str) -> Result<(), ClientError> {
        match self.send(command).await? {
            Reply::Data(d) if d.trim() == "success" => Ok(()),
            Reply::Error { code, message } => Err(ClientError::Server { code, message }),
            other => Err(ClientError::UnexpectedReply {
                step: format!("reading the reply to `{verb}`"),
                reply: format!("{other:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkam_command_forms() {
        assert_eq!(
            pkam_command(SigningAlgo::Rsa2048, HashingAlgo::Sha256, None, "c2ln"),
            "pkam:c2ln"
        );
        assert_eq!(
            pkam_command(
                SigningAlgo::Rsa2048,
                HashingAlgo::Sha512,
                Some("id-1"),
                "c2ln"
            ),
            "pkam:signingAlgo:rsa2048:hashingAlgo:sha512:enrollmentId:id-1:c2ln"
        );
        assert_eq!(
            pkam_command(SigningAlgo::EccSecp256r1, HashingAlgo::Sha256, None, "c2ln"),
            "pkam:signingAlgo:ecc_secp256r1:hashingAlgo:sha256:c2ln"
        );
        assert_eq!(
            pkam_command(SigningAlgo::Rsa2048, HashingAlgo::Sha256, Some("e"), "s"),
            "pkam:enrollmentId:e:s"
        );
        assert_eq!(
            pkam_command(SigningAlgo::MlDsa65, HashingAlgo::Sha512, Some("e"), "s"),
            "pkam:signingAlgo:mldsa65:enrollmentId:e:s"
        );
    }

    #[test]
    fn bound_challenges_round_trip_and_are_colon_free() {
        let alice = AtSign::parse("@alice").unwrap();
        let c = bound_challenge(&alice, "6f1c2d3e-aaaa-bbbb-cccc-123456789012");
        assert!(c.starts_with("pol1.") && !c.contains(':') && !c.contains('='));
        assert_eq!(challenge_binding(&c), ChallengeBinding::Bound(alice));
        assert_eq!(
            challenge_binding("6f1c2d3e-aaaa-bbbb-cccc-123456789012"),
            ChallengeBinding::Unbound
        );
        assert_eq!(challenge_binding("pol1.!!"), ChallengeBinding::Malformed);
        let parsed = PolChallenge::parse(&format!("proof:_s@bob:{c}")).unwrap();
        assert_eq!(parsed.challenge, c);
    }

    #[test]
    fn pol_challenge_parses_both_challenge_forms() {
        let c = PolChallenge::parse("proof:_0a1b@bob:5e6f-7a8b").unwrap();
        assert_eq!(c.session_key, "_0a1b@bob");
        assert_eq!(c.challenge, "5e6f-7a8b");
        assert_eq!(c.signature_key(), "public:_0a1b@bob");
        let c = PolChallenge::parse("proof:_x@bob:pol1.eyJ2IjoiQGFsaWNlIn0").unwrap();
        assert_eq!(c.challenge, "pol1.eyJ2IjoiQGFsaWNlIn0");
        for bad in [
            "_x@bob:uuid",
            "proof:",
            "proof:_x@bob",
            "proof:nosign:uuid",
            "proof:_x@bob: ",
        ] {
            assert!(PolChallenge::parse(bad).is_err(), "{bad}");
        }
    }
}
