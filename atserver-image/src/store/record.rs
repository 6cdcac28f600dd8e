//! One stored record: key, value and metadata.

use crate::metadata::Metadata;

/// One key/value record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub value: Option<String>,
    pub meta: Metadata,
}
