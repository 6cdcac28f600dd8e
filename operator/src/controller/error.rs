//! The reconcile's errors, in two layers. [`Error`] says which step failed: its variant is the
//! `step` label of `atfleet_operator_reconcile_outcomes_total`. [`Cause`] says what went wrong
//! underneath (an API refusal, a certificate, the directory): its kind is the `reason` label, the
//! reason of the Atsign's `Degraded` condition and of the Warning Event.

use super::step::Step;
use crate::directory::DirectoryError;
use crate::tls::TlsError;

/// What went wrong underneath a step.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("certificate: {0}")]
    Tls(#[from] TlsError),
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    #[error("malformed Atsign: {0}")]
    Malformed(String),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("CA Secret {0} lacks ca.crt or ca.key")]
    CaSecret(String),
}

impl Cause {
    /// Metric label, condition reason and Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Cause::Kube(kube::Error::Api(s)) if s.code == 409 => "Conflict",
            // RBAC refused a request: the chart's grants and the operator disagree.
            Cause::Kube(kube::Error::Api(s)) if s.code == 403 => "Forbidden",
            Cause::Kube(kube::Error::Api(s)) if s.code >= 500 => "ApiServerError",
            Cause::Kube(_) => "KubeError",
            Cause::Tls(_) => "CertificateError",
            Cause::Directory(e) => e.reason(),
            Cause::Malformed(_) => "MalformedAtsign",
            Cause::Json(_) => "EncodingError",
            Cause::CaSecret(_) => "CaSecretInvalid",
        }
    }
}

/// The orphan step's failure: the kind whose read or delete failed.
#[derive(Debug, thiserror::Error)]
#[error("deleting the stale {kind} {name}: {source}")]
pub struct OrphanError {
    pub kind: &'static str,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

/// One child the Apply step could not write.
#[derive(Debug)]
pub struct ChildFailure {
    /// The child's kind (`StatefulSet`, `Secret`, …).
    pub kind: &'static str,
    pub name: String,
    pub cause: Cause,
}

/// The children the Apply step could not write; every other child was applied regardless.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct ApplyError(pub Vec<ChildFailure>);

fn describe(failures: &[ChildFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("applying the {} {}: {}", f.kind, f.name, f.cause))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApplyError {
    fn reason(&self) -> &'static str {
        self.0.first().map_or("KubeError", |f| f.cause.reason())
    }
}

/// A failed reconcile, by the step it failed in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The finalizer could not be added, the class not read, or the Atsign makes no sense.
    #[error("validating the Atsign: {0}")]
    Validate(Cause),
    /// A current child, the CRAM secret or the built-in CA could not be read.
    #[error("reading {what}: {cause}")]
    Gather { what: String, cause: Cause },
    /// The built-in CA could not issue the certificate.
    #[error("issuing the certificate: {0}")]
    Certificate(Cause),
    #[error(transparent)]
    Apply(ApplyError),
    #[error(transparent)]
    DeleteOrphans(OrphanError),
    /// The rollout could not be read or a stuck pod not replaced.
    #[error("observing the rollout: {0}")]
    Observe(Cause),
    /// The atServer of an atSign another owner holds could not be scaled to zero.
    #[error("parking the atServer while another owner holds the atSign: {0}")]
    Register(Cause),
    #[error("writing the status: {0}")]
    Status(Cause),
    #[error("cleaning up: {0}")]
    Cleanup(Cause),
}

impl Error {
    /// A `Gather` error about `what`.
    pub fn gather(what: impl Into<String>) -> impl FnOnce(Cause) -> Error {
        let what = what.into();
        move |cause| Error::Gather { what, cause }
    }

    /// The step that failed: the outcome metric's `step` label.
    pub fn step(&self) -> Step {
        match self {
            Error::Validate(_) => Step::Validate,
            Error::Gather { .. } => Step::Gather,
            Error::Certificate(_) => Step::Certificate,
            Error::Apply(_) => Step::Apply,
            Error::DeleteOrphans(_) => Step::DeleteOrphans,
            Error::Observe(_) => Step::Observe,
            Error::Register(_) => Step::Register,
            Error::Status(_) => Step::Status,
            Error::Cleanup(_) => Step::Cleanup,
        }
    }

    /// Why: the metric's `reason` label, the Degraded condition's reason and the Event's.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Apply(e) => e.reason(),
            Error::DeleteOrphans(_) => "StaleChildNotDeleted",
            Error::Validate(c)
            | Error::Gather { cause: c, .. }
            | Error::Certificate(c)
            | Error::Observe(c)
            | Error::Register(c)
            | Error::Status(c)
            | Error::Cleanup(c) => c.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Cause {
        Cause::Kube(kube::Error::Api(
            kube::core::Status::failure("refused", "Refused")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn the_variant_names_the_step_and_the_cause_the_reason() {
        let e = Error::gather("the Secret ns/a-tls")(api(403));
        assert_eq!((e.step(), e.reason()), (Step::Gather, "Forbidden"));
        assert!(e.to_string().starts_with("reading the Secret ns/a-tls: "));
        let e = Error::Status(api(409));
        assert_eq!((e.step().as_str(), e.reason()), ("Status", "Conflict"));
    }

    #[test]
    fn an_apply_error_names_every_child_and_takes_the_first_reason() {
        let e = Error::Apply(ApplyError(vec![
            ChildFailure {
                kind: "PersistentVolumeClaim",
                name: "ns/a-data".into(),
                cause: api(500),
            },
            ChildFailure {
                kind: "StatefulSet",
                name: "ns/a".into(),
                cause: api(403),
            },
        ]));
        assert_eq!((e.step(), e.reason()), (Step::Apply, "ApiServerError"));
        let text = e.to_string();
        assert!(text.contains("applying the PersistentVolumeClaim ns/a-data"));
        assert!(text.contains("; applying the StatefulSet ns/a"));
    }
}
