//! The `chaos` section (issue 16). Being written; until then it reports that it did not run.

use super::report::SectionReport;
use super::{Ctx, ReliabilityError};

pub async fn run(_ctx: &Ctx) -> Result<SectionReport, ReliabilityError> {
    Err(ReliabilityError::Setup(
        "the chaos section is not written yet".into(),
    ))
}
