//! APKAM verbs: `enroll` and `keys` (§6.4).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cursor::Cursor;
use super::error::ParseError;

/// The `enroll` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollOp {
    Request,
    Approve,
    Deny,
    Revoke,
    Unrevoke,
    Delete,
    List,
    Fetch,
    Update,
    ListNs,
}

impl EnrollOp {
    pub const ALL: [EnrollOp; 10] = [
        EnrollOp::Request,
        EnrollOp::Approve,
        EnrollOp::Deny,
        EnrollOp::Revoke,
        EnrollOp::Unrevoke,
        EnrollOp::Delete,
        EnrollOp::List,
        EnrollOp::Fetch,
        EnrollOp::Update,
        EnrollOp::ListNs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnrollOp::Request => "request",
            EnrollOp::Approve => "approve",
            EnrollOp::Deny => "deny",
            EnrollOp::Revoke => "revoke",
            EnrollOp::Unrevoke => "unrevoke",
            EnrollOp::Delete => "delete",
            EnrollOp::List => "list",
            EnrollOp::Fetch => "fetch",
            EnrollOp::Update => "update",
            EnrollOp::ListNs => "listns",
        }
    }
}

/// The JSON parameters of `enroll:<op>:{…}`; unknown members are kept in `other`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// namespace → `r` | `rw`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_default_encryption_private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_default_self_encryption_key: Option<String>,
    #[serde(
        rename = "encryptedAPKAMSymmetricKey",
        skip_serializing_if = "Option::is_none"
    )]
    pub encrypted_apkam_symmetric_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apkam_public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_status_filter: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apkam_keys_expiry_in_millis: Option<i64>,
    /// Any other member (e.g. newer `metadata`, signing fields of `enroll:update`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `enroll:<op>[:force][:<listNamespace>][:{json}]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollParams {
    pub operation: EnrollOp,
    pub force: bool,
    /// `enroll:listns:<namespace>`
    pub list_namespace: Option<String>,
    /// The JSON text as sent and its typed form.
    pub raw: Option<String>,
    pub request: Option<EnrollRequest>,
}

impl EnrollParams {
    /// Builds the command from a typed request (serialising it).
    pub fn new(operation: EnrollOp, request: Option<EnrollRequest>) -> EnrollParams {
        let raw = request
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_else(|_| "{}".to_string()));
        EnrollParams {
            operation,
            force: false,
            list_namespace: None,
            raw,
            request,
        }
    }
}

pub(super) fn parse_enroll(c: &mut Cursor<'_>) -> Result<EnrollParams, ParseError> {
    let op_text = c.take_until(|ch| ch == ':');
    let operation = EnrollOp::ALL
        .into_iter()
        .find(|o| o.as_str().eq_ignore_ascii_case(op_text))
        .ok_or_else(|| ParseError::syntax(format!("unknown enroll operation {op_text:?}")))?;
    let force = if c.peek(":force") && matches!(c.rest().as_bytes().get(6), None | Some(b':')) {
        c.eat(":force")
    } else {
        false
    };
    let list_namespace = if c.peek(":") && !c.peek(":{") && !c.rest().is_empty() {
        c.eat(":");
        let ns = c.take_until(|ch| ch == ':' || ch == '{');
        if ns.is_empty() || ns.contains(char::is_whitespace) {
            return Err(ParseError::syntax("invalid namespace"));
        }
        Some(ns.to_string())
    } else {
        None
    };
    c.eat(":");
    let rest = c.take_rest();
    let (raw, request) = if rest.is_empty() {
        (None, None)
    } else {
        let req: EnrollRequest = serde_json::from_str(rest)
            .map_err(|e| ParseError::syntax(format!("invalid enroll params: {e}")))?;
        (Some(rest.to_string()), Some(req))
    };
    Ok(EnrollParams {
        operation,
        force,
        list_namespace,
        raw,
        request,
    })
}

impl fmt::Display for EnrollParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enroll:{}", self.operation.as_str())?;
        if self.force {
            f.write_str(":force")?;
        }
        if let Some(ns) = &self.list_namespace {
            write!(f, ":{ns}")?;
        }
        if let Some(raw) = &self.raw {
            write!(f, ":{raw}")?;
        }
        Ok(())
    }
}

/// `keys:put|get|delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeysOp {
    Put,
    Get,
    Delete,
}

/// `public`, `private` or `self`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeysVisibility {
    Public,
    Private,
    SelfKeys,
}

/// `keys:<op>[:<visibility>][:namespace:…][:appName:…][:deviceName:…][:keyType:…]`
/// `[:encryptionKeyName:…][:keyName:<name>][ <value>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysParams {
    pub operation: KeysOp,
    pub visibility: Option<KeysVisibility>,
    pub namespace: Option<String>,
    pub app_name: Option<String>,
    pub device_name: Option<String>,
    pub key_type: Option<String>,
    pub encryption_key_name: Option<String>,
    pub key_name: Option<String>,
    pub key_value: Option<String>,
}

fn word(s: &str, dash: bool) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (dash && c == '-'))
}

pub(super) fn parse_keys(c: &mut Cursor<'_>) -> Result<KeysParams, ParseError> {
    let operation = if c.eat("put") {
        KeysOp::Put
    } else if c.eat("get") {
        KeysOp::Get
    } else if c.eat("delete") {
        KeysOp::Delete
    } else {
        return Err(ParseError::syntax("keys takes put, get or delete"));
    };
    c.eat(":");
    let stop = |ch: char| ch == ':' || ch == ' ';
    let ends_here = |c: &Cursor<'_>, len: usize| {
        matches!(c.rest().as_bytes().get(len), None | Some(b':') | Some(b' '))
    };
    let mut visibility = None;
    for (lit, v) in [
        ("public", KeysVisibility::Public),
        ("private", KeysVisibility::Private),
        ("self", KeysVisibility::SelfKeys),
    ] {
        if c.peek(lit) && ends_here(c, lit.len()) {
            c.eat(lit);
            c.eat(":");
            visibility = Some(v);
            break;
        }
    }
    let item = |c: &mut Cursor<'_>, lit: &str, dash: bool| -> Result<Option<String>, ParseError> {
        if !c.eat(lit) {
            return Ok(None);
        }
        let v = c.take_until(stop);
        if !word(v, dash) {
            return Err(ParseError::syntax(format!("invalid {lit}")));
        }
        c.eat(":");
        Ok(Some(v.to_string()))
    };
    let namespace = item(c, "namespace:", false)?;
    let app_name = item(c, "appName:", false)?;
    let device_name = item(c, "deviceName:", false)?;
    let key_type = item(c, "keyType:", true)?;
    let encryption_key_name = item(c, "encryptionKeyName:", true)?;
    let key_name = if c.eat("keyName:") {
        let k = c.take_until(char::is_whitespace);
        if k.is_empty() {
            return Err(ParseError::syntax("empty keyName"));
        }
        c.eat(" ");
        Some(k.to_string())
    } else {
        None
    };
    let value = c.take_rest();
    Ok(KeysParams {
        operation,
        visibility,
        namespace,
        app_name,
        device_name,
        key_type,
        encryption_key_name,
        key_name,
        key_value: (!value.is_empty()).then(|| value.to_string()),
    })
}

impl fmt::Display for KeysParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.operation {
            KeysOp::Put => "keys:put",
            KeysOp::Get => "keys:get",
            KeysOp::Delete => "keys:delete",
        })?;
        if let Some(v) = self.visibility {
            f.write_str(match v {
                KeysVisibility::Public => ":public",
                KeysVisibility::Private => ":private",
                KeysVisibility::SelfKeys => ":self",
            })?;
        }
        for (lit, v) in [
            ("namespace", &self.namespace),
            ("appName", &self.app_name),
            ("deviceName", &self.device_name),
            ("keyType", &self.key_type),
            ("encryptionKeyName", &self.encryption_key_name),
            ("keyName", &self.key_name),
        ] {
            if let Some(v) = v {
                write!(f, ":{lit}:{v}")?;
            }
        }
        if let Some(v) = &self.key_value {
            if self.key_name.is_some() {
                write!(f, " {v}")?;
            } else {
                write!(f, ":{v}")?;
            }
        }
        Ok(())
    }
}
