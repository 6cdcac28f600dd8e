//! `otp:get` / `otp:put`: one-time and semi-permanent passcodes for enrollment requests.

use std::collections::BTreeMap;

use at_protocol::command::{OtpOp, OtpParams};
use rand::Rng;

use crate::error::AtError;
use crate::keystore;
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

use super::enroll::record::may_manage;

/// How long a generated OTP lives unless `otp:get:ttl:` says otherwise.
const OTP_TTL_MS: i64 = 5 * 60 * 1000;

/// An OTP: six upper-case letters and digits, at least one digit, never `0` or `O`.
fn generate_otp() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNPQRSTUVWXYZ123456789";
    let mut rng = rand::thread_rng();
    loop {
        let otp: String = (0..6)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect();
        if otp.bytes().any(|b| b.is_ascii_digit()) {
            return otp;
        }
    }
}

pub async fn otp(s: &mut Session, p: OtpParams) -> CmdResult {
    if s.enrollment().is_some() {
        may_manage(s, &BTreeMap::new())
            .map_err(|_| AtError::unauthorized("otp needs __manage access"))?;
    }
    let me = s.atsign().to_string();
    let ttl = p.ttl.and_then(|t| i64::try_from(t).ok());
    match p.operation {
        OtpOp::Get => {
            let code = generate_otp();
            let meta = MetaUpdate {
                ttl: Some(ttl.unwrap_or(OTP_TTL_MS)),
                ..Default::default()
            };
            let key = format!("private:{}.__otp{me}", code.to_lowercase());
            keystore::put(&s.shared, &key, Some(code.clone()), &meta, true).await?;
            Ok(Reply::Data(code))
        }
        OtpOp::Put(Some(spp)) => {
            let meta = MetaUpdate {
                ttl,
                ..Default::default()
            };
            keystore::put(
                &s.shared,
                &format!("private:spp.__otp{me}"),
                Some(spp),
                &meta,
                true,
            )
            .await?;
            Ok(Reply::data("ok"))
        }
        OtpOp::Put(None) => Err(AtError::syntax("otp:put needs a passcode")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_shape() {
        for _ in 0..50 {
            let o = generate_otp();
            assert_eq!(o.len(), 6);
            assert!(o.bytes().any(|b| b.is_ascii_digit()));
            assert!(!o.contains('0') && !o.contains('O'));
        }
    }
}
