//! The steps of one reconcile, in order. The step a reconcile ended in labels its outcome in
//! `atfleet_operator_reconcile_outcomes_total`, so a failure says where it happened as well as
//! why.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The finalizer, the class and the spec.
    Validate,
    /// The Secrets and the Service as they are.
    Gather,
    /// The Service, whose observed state fixes the published endpoint.
    ApplyService,
    /// The certificate for that endpoint (issued by the built-in CA or read from cert-manager's).
    Certificate,
    /// The other children, each on its own.
    Apply,
    /// Children the spec no longer wants.
    DeleteOrphans,
    /// The StatefulSet's rollout and the pod's readiness.
    Observe,
    /// The atDirectory record.
    Register,
    /// The Atsign's status.
    Status,
    /// The finalizer's teardown.
    Cleanup,
    /// Every step ran.
    Done,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Validate => "Validate",
            Step::Gather => "Gather",
            Step::ApplyService => "ApplyService",
            Step::Certificate => "Certificate",
            Step::Apply => "Apply",
            Step::DeleteOrphans => "DeleteOrphans",
            Step::Observe => "Observe",
            Step::Register => "Register",
            Step::Status => "Status",
            Step::Cleanup => "Cleanup",
            Step::Done => "Done",
        }
    }
}

/// Where a reconcile is, and why it stopped early without an error (an invalid spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub step: Step,
    pub stopped: Option<&'static str>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            step: Step::Validate,
            stopped: None,
        }
    }

    /// The outcome's labels: the step, and the error's reason, the reason the pipeline stopped,
    /// or `Ok`.
    pub fn outcome(self, error: Option<&'static str>) -> (&'static str, &'static str) {
        (self.step.as_str(), error.or(self.stopped).unwrap_or("Ok"))
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels() {
        let mut p = Progress::new();
        assert_eq!(p.outcome(None), ("Validate", "Ok"));
        p.stopped = Some("ClassNotFound");
        assert_eq!(p.outcome(None), ("Validate", "ClassNotFound"));
        p.step = Step::Register;
        assert_eq!(p.outcome(Some("Conflict")), ("Register", "Conflict"));
    }
}
