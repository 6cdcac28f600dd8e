//! From what the reconcile observed to the Atsign's status: phase and standard conditions.
//! Pure, so the mapping is unit-tested; transition times only move when a status changes.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{AtsignStatus, CertificateStatus, Phase, RegistrationStatus};
use crate::endpoint::Endpoint;
use crate::tls::{CertInfo, RenewalPoint};

/// Where the directory registration stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationState {
    Registered {
        endpoint: String,
        owner: String,
    },
    /// Not attempted yet, with the reason (pod not ready, certificate pending, …).
    Waiting(&'static str, String),
    /// Attempted and failed.
    Failed(&'static str, String),
    /// Withdrawn because the Atsign is suspended.
    Suspended,
    /// The operator runs without a directory.
    Disabled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub deleting: bool,
    pub suspended: bool,
    /// A spec or class problem that stops the pipeline: (reason, message).
    pub invalid: Option<(&'static str, String)>,
    /// A child the apiserver refused to change while the rest went ahead (a volume resize):
    /// Degraded, but the atServer may still be serving, so Ready is not touched.
    pub refused: Option<(&'static str, String)>,
    pub endpoint: Option<Endpoint>,
    pub cert_source: &'static str,
    pub cert: Option<CertInfo>,
    /// This Atsign's point in a certificate's life to renew at.
    pub renewal: RenewalPoint,
    pub pod_ready: bool,
    pub rolling_out: bool,
    pub registration: RegistrationState,
    pub now: Timestamp,
}

impl Observed {
    /// The certificate names the published host and has not expired.
    pub fn cert_ready(&self) -> bool {
        match (&self.cert, &self.endpoint) {
            (Some(c), Some(e)) => c.names.contains(&e.host) && self.now < c.not_after,
            _ => false,
        }
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// The message of a registration refused because another owner holds the atSign.
fn owner_conflict(r: &RegistrationState) -> Option<&str> {
    match r {
        RegistrationState::Failed(reason, msg) if *reason == "OwnerConflict" => Some(msg),
        _ => None,
    }
}

pub fn compute_status(previous: Option<&AtsignStatus>, o: &Observed) -> AtsignStatus {
    let g = o.generation;
    let now = o.now;
    let cert_ready = o.cert_ready();
    let registered = matches!(
        o.registration,
        RegistrationState::Registered { .. } | RegistrationState::Disabled
    );

    let cert_cond = match (&o.cert, &o.endpoint) {
        _ if cert_ready => condition(
            "CertificateReady",
            true,
            "Issued",
            format!("{} certificate valid", o.cert_source),
            g,
            now,
        ),
        (_, None) => condition(
            "CertificateReady",
            false,
            "WaitingForAddress",
            "the published address is not known yet".into(),
            g,
            now,
        ),
        (Some(c), Some(_)) if now >= c.not_after => condition(
            "CertificateReady",
            false,
            "Expired",
            "the certificate has expired".into(),
            g,
            now,
        ),
        _ => condition(
            "CertificateReady",
            false,
            "Pending",
            format!("waiting for the {} certificate", o.cert_source),
            g,
            now,
        ),
    };
    let reg_cond = match &o.registration {
        RegistrationState::Registered { endpoint, .. } => condition(
            "Registered",
            true,
            "Registered",
            format!("the directory answers {endpoint}"),
            g,
            now,
        ),
        RegistrationState::Waiting(reason, msg) | RegistrationState::Failed(reason, msg) => {
            condition("Registered", false, reason, msg.clone(), g, now)
        }
        RegistrationState::Suspended => condition(
            "Registered",
            false,
            "Suspended",
            "withdrawn while suspended".into(),
            g,
            now,
        ),
        RegistrationState::Disabled => condition(
            "Registered",
            false,
            "DirectoryDisabled",
            "the operator runs without a directory".into(),
            g,
            now,
        ),
    };
    let ready = !o.deleting
        && !o.suspended
        && o.invalid.is_none()
        && o.pod_ready
        && cert_ready
        && registered;
    let (ready_reason, ready_msg) = if o.deleting {
        ("Terminating", "being deleted".to_owned())
    } else if let Some((reason, msg)) = &o.invalid {
        (*reason, msg.clone())
    } else if o.suspended {
        ("Suspended", "scaled to zero".to_owned())
    } else if let Some(msg) = owner_conflict(&o.registration) {
        // Parked at zero replicas: the pod is not ready on purpose, and this says why.
        ("OwnerConflict", msg.to_owned())
    } else if !o.pod_ready {
        ("PodNotReady", "the atServer pod is not ready".to_owned())
    } else if !cert_ready {
        (
            "CertificateNotReady",
            "the certificate is not ready".to_owned(),
        )
    } else if !registered {
        let why = match &o.registration {
            RegistrationState::Failed(_, msg) => format!("registration failed: {msg}"),
            RegistrationState::Waiting(_, msg) => msg.clone(),
            _ => "the directory does not publish this atServer's address".to_owned(),
        };
        ("NotRegistered", why)
    } else {
        ("Ready", "the atServer is serving and registered".to_owned())
    };
    let failed = match (&o.invalid, &o.registration, &o.refused) {
        (Some((reason, msg)), _, _) => Some((*reason, msg.clone())),
        (None, RegistrationState::Failed(reason, msg), _) => Some((*reason, msg.clone())),
        (None, _, Some((reason, msg))) => Some((*reason, msg.clone())),
        _ => None,
    };
    let degraded = match &failed {
        Some((reason, msg)) => condition("Degraded", true, reason, msg.clone(), g, now),
        None => condition("Degraded", false, "AsExpected", String::new(), g, now),
    };
    let progressing = !ready && !o.suspended && !o.deleting && failed.is_none() || o.rolling_out;
    let progressing = condition(
        "Progressing",
        progressing,
        if o.rolling_out {
            "RollingOut"
        } else if progressing {
            "Provisioning"
        } else {
            "Settled"
        },
        String::new(),
        g,
        now,
    );
    let phase = if o.deleting {
        Phase::Terminating
    } else if o.invalid.is_some() {
        Phase::Degraded
    } else if o.suspended {
        Phase::Suspended
    } else if ready {
        Phase::Ready
    } else if failed.is_some() {
        Phase::Degraded
    } else {
        Phase::Provisioning
    };
    let conditions = [
        condition("Ready", ready, ready_reason, ready_msg, g, now),
        reg_cond,
        cert_cond,
        progressing,
        degraded,
    ]
    .into_iter()
    .map(|mut c| {
        // Keep the transition time while the status stays the same.
        if let Some(prev) = previous.and_then(|p| p.conditions.iter().find(|p| p.type_ == c.type_))
        {
            if prev.status == c.status {
                c.last_transition_time = prev.last_transition_time.clone();
            }
        }
        c
    })
    .collect();
    AtsignStatus {
        observed_generation: g,
        phase: Some(phase),
        endpoint: o.endpoint.as_ref().map(ToString::to_string),
        conditions,
        certificate: o.cert.as_ref().map(|c| CertificateStatus {
            source: o.cert_source.into(),
            not_after: Some(c.not_after.to_string()),
            renewal_time: Some(o.renewal.time(c).to_string()),
            dns_names: c.names.clone(),
        }),
        registration: match &o.registration {
            RegistrationState::Registered { endpoint, owner } => Some(RegistrationStatus {
                endpoint: endpoint.clone(),
                owner: owner.clone(),
            }),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Observed {
        let now = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        Observed {
            refused: None,
            generation: Some(3),
            deleting: false,
            suspended: false,
            invalid: None,
            endpoint: Some(Endpoint {
                host: "alice.example".into(),
                port: 6464,
            }),
            cert_source: "BuiltIn",
            cert: Some(CertInfo {
                not_before: now - jiff::SignedDuration::from_hours(1),
                not_after: now + jiff::SignedDuration::from_hours(100),
                names: vec!["alice.example".into()],
            }),
            renewal: RenewalPoint::for_atsign("fleet", "alice"),
            pod_ready: true,
            rolling_out: false,
            registration: RegistrationState::Registered {
                endpoint: "alice.example:6464".into(),
                owner: "o".into(),
            },
            now,
        }
    }

    fn cond<'a>(s: &'a AtsignStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .expect("condition present")
    }

    #[test]
    fn all_good_is_ready() {
        let s = compute_status(None, &base());
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "Degraded").status, "False");
        assert_eq!(cond(&s, "Progressing").status, "False");
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.endpoint.as_deref(), Some("alice.example:6464"));
    }

    #[test]
    fn directory_failure_is_degraded_and_not_ready() {
        let mut o = base();
        o.registration =
            RegistrationState::Failed("DirectoryUnavailable", "connection refused".into());
        let s = compute_status(None, &o);
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(cond(&s, "Registered").reason, "DirectoryUnavailable");
        assert_eq!(cond(&s, "Ready").reason, "NotRegistered");
        assert_eq!(cond(&s, "Degraded").status, "True");
    }

    #[test]
    fn a_failed_registration_does_not_promise_the_address() {
        let mut o = base();
        o.registration =
            RegistrationState::Failed("DirectoryUnavailable", "connection refused".into());
        let s = compute_status(None, &o);
        let ready = cond(&s, "Ready");
        assert_eq!(ready.message, "registration failed: connection refused");
        assert!(!ready.message.contains("yet"), "{}", ready.message);
    }

    #[test]
    fn owner_conflict_is_degraded_and_ready_says_why() {
        let mut o = base();
        // Parked: the StatefulSet is at zero, so the pod is not ready.
        o.pod_ready = false;
        let msg = "@bob is registered in the directory to Atsign fleet/bob, so this atServer \
                   could never be reached: it is scaled to zero. To resolve: …";
        o.registration = RegistrationState::Failed("OwnerConflict", msg.into());
        let s = compute_status(None, &o);
        assert_eq!(s.phase, Some(Phase::Degraded));
        for t in ["Ready", "Registered", "Degraded"] {
            assert_eq!(cond(&s, t).reason, "OwnerConflict", "{t}");
            assert_eq!(cond(&s, t).message, msg, "{t}");
        }
        assert_eq!(cond(&s, "Progressing").status, "False");
    }

    #[test]
    fn certificate_for_another_host_is_not_ready() {
        let mut o = base();
        o.endpoint = Some(Endpoint {
            host: "bob.example".into(),
            port: 6464,
        });
        let s = compute_status(None, &o);
        assert_eq!(cond(&s, "CertificateReady").status, "False");
        assert_eq!(cond(&s, "Ready").reason, "CertificateNotReady");
    }

    #[test]
    fn suspended_reports_suspended() {
        let mut o = base();
        o.suspended = true;
        o.pod_ready = false;
        o.registration = RegistrationState::Suspended;
        let s = compute_status(None, &o);
        assert_eq!(s.phase, Some(Phase::Suspended));
        assert_eq!(cond(&s, "Ready").reason, "Suspended");
        assert_eq!(cond(&s, "Progressing").status, "False");
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let first = compute_status(None, &base());
        let mut later = base();
        later.now += jiff::SignedDuration::from_mins(10);
        let second = compute_status(Some(&first), &later);
        assert_eq!(
            cond(&first, "Ready").last_transition_time,
            cond(&second, "Ready").last_transition_time
        );
        later.pod_ready = false;
        let third = compute_status(Some(&second), &later);
        assert_ne!(
            cond(&second, "Ready").last_transition_time,
            cond(&third, "Ready").last_transition_time
        );
    }
}
