//! The steps of one reconcile, in order, and how a reconcile ended. The step it ended in labels
//! its outcome in `atfleet_operator_reconcile_outcomes_total`, so a failure says where it
//! happened as well as why.

use kube::runtime::controller::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The finalizer, the class and the spec.
    Validate,
    /// The current children, the CRAM secret, the built-in CA, the TLSRoute version.
    Gather,
    /// The certificate for the published endpoint (kept, or issued by the built-in CA).
    Certificate,
    /// Every child, each on its own (builders are pure and cannot fail).
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

/// How a reconcile that did not fail ended.
#[derive(Debug)]
pub struct Finished {
    pub action: Action,
    /// The last step it ran.
    pub step: Step,
    /// Why the pipeline stopped early without an error (an invalid spec).
    pub stopped: Option<&'static str>,
}

impl Finished {
    pub fn done(action: Action) -> Self {
        Self {
            action,
            step: Step::Done,
            stopped: None,
        }
    }

    /// Stopped after validation: the spec or its class is unusable.
    pub fn invalid(reason: &'static str, action: Action) -> Self {
        Self {
            action,
            step: Step::Validate,
            stopped: Some(reason),
        }
    }

    pub fn at(step: Step, action: Action) -> Self {
        Self {
            action,
            step,
            stopped: None,
        }
    }
}
