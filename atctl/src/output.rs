//! Human-readable text by default, one JSON document per result with `--json`.

use serde_json::Value;

use crate::error::CtlError;

#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints one result: `human` as text, or `json` on one line.
    pub fn emit(&self, human: impl AsRef<str>, json: Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{}", human.as_ref());
        }
    }

    /// Prints an error on stderr.
    pub fn error(&self, e: &CtlError) {
        if self.json {
            let v = serde_json::json!({
                "error": e.class.as_str(),
                "code": e.code.map(|c| c.as_str()),
                "message": e.message,
                "exitCode": e.class.exit_code(),
            });
            eprintln!("{v}");
        } else {
            eprintln!("atctl: {e}");
        }
    }
}
