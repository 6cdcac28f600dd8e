//! `from`, `cram`, `pkam`, `to` (§3.4; `pol` and `@exit` carry no parameters).

use std::fmt;

use serde_json::Value;

use super::cursor::Cursor;
use super::error::ParseError;
use crate::atsign::AtSign;

/// `from:@alice[:clientConfig:{json}]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromParams {
    pub atsign: AtSign,
    pub client_config: Option<ClientConfig>,
}

/// The `clientConfig` JSON of `from:`; `raw` is kept so the command formats back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub raw: String,
    pub version: Option<String>,
    pub client_id: Option<String>,
    pub app_name: Option<String>,
    pub app_version: Option<String>,
    pub platform: Option<String>,
}

impl ClientConfig {
    /// Parses the JSON object text.
    pub fn parse(raw: &str) -> Result<ClientConfig, ParseError> {
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| ParseError::syntax(format!("clientConfig is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(ParseError::syntax("clientConfig must be a JSON object"));
        }
        let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
        Ok(ClientConfig {
            raw: raw.to_string(),
            version: field("version"),
            client_id: field("clientId"),
            app_name: field("appName"),
            app_version: field("appVersion"),
            platform: field("platform"),
        })
    }

    /// Clients declaring a version above 3.0.37 get JSON-shaped errors (§1.4).
    pub fn wants_json_errors(&self) -> bool {
        let Some(v) = &self.version else {
            return false;
        };
        let parts: Vec<u64> = v
            .split(['.', '-', '+'])
            .take(3)
            .map_while(|p| p.parse().ok())
            .collect();
        match parts.as_slice() {
            [major, minor, patch] => (*major, *minor, *patch) > (3, 0, 37),
            _ => false,
        }
    }
}

pub(super) fn parse_from(c: &mut Cursor<'_>) -> Result<FromParams, ParseError> {
    let who = c.take_until(|ch| ch == ':');
    let atsign = AtSign::parse(who)?;
    let client_config = if c.is_empty() {
        None
    } else {
        c.expect(":clientConfig:")?;
        let raw = c.take_rest();
        if !(raw.starts_with('{') && raw.ends_with('}') && raw.len() > 2) {
            return Err(ParseError::syntax("clientConfig must be a JSON object"));
        }
        Some(ClientConfig::parse(raw)?)
    };
    Ok(FromParams {
        atsign,
        client_config,
    })
}

impl fmt::Display for FromParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from:{}", self.atsign)?;
        if let Some(cc) = &self.client_config {
            write!(f, ":clientConfig:{}", cc.raw)?;
        }
        Ok(())
    }
}

/// `pkam:[signingAlgo:<a>:][hashingAlgo:<h>:][enrollmentId:<id>:]<signature>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkamParams {
    /// `rsa2048`, `ecc_secp256r1` or `mldsa65` (lower-case).
    pub signing_algo: Option<String>,
    /// `sha256` or `sha512` (lower-case).
    pub hashing_algo: Option<String>,
    pub enrollment_id: Option<String>,
    pub signature: String,
}

const SIGNING_ALGOS: [&str; 3] = ["rsa2048", "ecc_secp256r1", "mldsa65"];
const HASHING_ALGOS: [&str; 2] = ["sha256", "sha512"];

fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<String, ParseError> {
    let lower = value.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ParseError::syntax(format!("unknown {what} {value:?}")))
    }
}

/// `<lit><value>:` where value is one of `allowed`.
fn algo_item(
    c: &mut Cursor<'_>,
    lit: &str,
    allowed: &[&str],
) -> Result<Option<String>, ParseError> {
    if !c.eat(lit) {
        return Ok(None);
    }
    let value = one_of(
        lit.trim_end_matches(':'),
        c.take_until(|ch| ch == ':'),
        allowed,
    )?;
    c.expect(":")?;
    Ok(Some(value))
}

pub(super) fn parse_pkam(c: &mut Cursor<'_>) -> Result<PkamParams, ParseError> {
    let signing_algo = algo_item(c, "signingAlgo:", &SIGNING_ALGOS)?;
    let hashing_algo = algo_item(c, "hashingAlgo:", &HASHING_ALGOS)?;
    let enrollment_id = if c.eat("enrollmentId:") {
        // `(?<enrollmentId>.+):(?<signature>.+)`: the id runs to the last colon.
        let rest = c.take_rest();
        let (id, sig) = rest
            .rsplit_once(':')
            .ok_or_else(|| ParseError::syntax("missing signature"))?;
        if id.is_empty() {
            return Err(ParseError::syntax("empty enrollmentId"));
        }
        c.set_rest(sig);
        Some(id.to_string())
    } else {
        None
    };
    let signature = c.take_rest();
    if signature.is_empty() {
        return Err(ParseError::syntax("missing signature"));
    }
    Ok(PkamParams {
        signing_algo,
        hashing_algo,
        enrollment_id,
        signature: signature.to_string(),
    })
}

impl fmt::Display for PkamParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkam:")?;
        if let Some(a) = &self.signing_algo {
            write!(f, "signingAlgo:{a}:")?;
        }
        if let Some(h) = &self.hashing_algo {
            write!(f, "hashingAlgo:{h}:")?;
        }
        if let Some(id) = &self.enrollment_id {
            write!(f, "enrollmentId:{id}:")?;
        }
        f.write_str(&self.signature)
    }
}
