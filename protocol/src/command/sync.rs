//! `sync:from` and `batch` (§3.7, §9).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::cursor::{parse_u64, Cursor};
use super::error::ParseError;

/// `sync:from:<commitId|-1>[:limit:<n>][:skipDeletesUntil:<commitId>][:<regex>]`
/// (`:limit:` is mandatory for 3.0.52 servers, optional from 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFromParams {
    /// Entries with a commit id strictly greater than this are returned (`-1` = all).
    pub from: i64,
    pub limit: Option<u64>,
    pub skip_deletes_until: Option<u64>,
    pub regex: Option<String>,
}

pub(super) fn parse_sync_from(c: &mut Cursor<'_>) -> Result<SyncFromParams, ParseError> {
    c.expect(":")?;
    let from_text = c.take_until(|ch| ch == ':');
    let from = if from_text == "-1" {
        -1
    } else {
        i64::try_from(parse_u64("commit id", from_text)?)
            .map_err(|_| ParseError::syntax("commit id out of range"))?
    };
    let limit = if c.eat(":limit:") {
        Some(parse_u64("limit", c.take_until(|ch| ch == ':'))?)
    } else {
        None
    };
    let skip_deletes_until = if c.eat(":skipDeletesUntil:") {
        Some(parse_u64("skipDeletesUntil", c.take_until(|ch| ch == ':'))?)
    } else {
        None
    };
    let regex = if c.eat(":") {
        let r = c.take_rest();
        if r.is_empty() {
            return Err(ParseError::syntax("empty sync regex"));
        }
        Some(r.to_string())
    } else {
        None
    };
    c.expect_end()?;
    Ok(SyncFromParams {
        from,
        limit,
        skip_deletes_until,
        regex,
    })
}

impl fmt::Display for SyncFromParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sync:from:{}", self.from)?;
        if let Some(n) = self.limit {
            write!(f, ":limit:{n}")?;
        }
        if let Some(n) = self.skip_deletes_until {
            write!(f, ":skipDeletesUntil:{n}")?;
        }
        if let Some(r) = &self.regex {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

/// One element of a `batch:` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub id: i64,
    pub command: String,
}

/// `batch:[{"id":1,"command":"update:…"},…]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchParams {
    /// The JSON text as sent.
    pub raw: String,
    pub requests: Vec<BatchRequest>,
}

impl BatchParams {
    /// Builds the request (and its JSON text) from commands.
    pub fn new(requests: Vec<BatchRequest>) -> BatchParams {
        let raw = serde_json::to_string(&requests).unwrap_or_else(|_| "[]".to_string());
        BatchParams { raw, requests }
    }
}

pub(super) fn parse_batch(c: &mut Cursor<'_>) -> Result<BatchParams, ParseError> {
    let raw = c.take_rest();
    let requests: Vec<BatchRequest> = serde_json::from_str(raw)
        .map_err(|e| ParseError::syntax(format!("invalid batch JSON: {e}")))?;
    Ok(BatchParams {
        raw: raw.to_string(),
        requests,
    })
}

impl fmt::Display for BatchParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch:{}", self.raw)
    }
}

/// One element of a `batch:` reply: `{"id":1,"response":{"data":"42"}}` or
/// `{"id":2,"response":{"error_code":"AT0003","error_message":"Invalid syntax"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub id: i64,
    pub response: BatchResult,
}

/// The `response` member of a [`BatchResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Data {
        data: String,
    },
    Error {
        error_code: String,
        error_message: String,
    },
}
