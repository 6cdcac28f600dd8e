//! An atSign as the user typed it (argument, `--atsign`, a keys file's name). Its own module
//! because the keys folder and the session both read atSigns, and the session uses the keys folder.

use at_protocol::AtSign;

use crate::error::{CtlError, Result};

pub fn parse_atsign(text: &str) -> Result<AtSign> {
    AtSign::parse(text).map_err(|e| CtlError::usage(format!("invalid atSign {text:?}: {e}")))
}
