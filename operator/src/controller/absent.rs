//! The optional children (the trust ConfigMap, the Certificate, the TLSRoute), and which of
//! them each Atsign is known not to have. These kinds are not watched, so whether one exists is
//! remembered per Atsign: the first reconcile after a start reads it once, and a child is known
//! absent from then on until the operator applies it again. A settled fleet makes no requests
//! for them.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::build::{self, Children};

/// An optional child kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Optional {
    TrustConfigMap,
    Certificate,
    TlsRoute,
}

impl Optional {
    pub const ALL: [Optional; 3] = [
        Optional::TrustConfigMap,
        Optional::Certificate,
        Optional::TlsRoute,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            Optional::TrustConfigMap => "ConfigMap",
            Optional::Certificate => "Certificate",
            Optional::TlsRoute => "TLSRoute",
        }
    }

    /// The child's name for the Atsign `name`.
    pub fn child_name(self, name: &str) -> String {
        match self {
            Optional::TrustConfigMap => build::trust_config_map_name(name),
            Optional::Certificate | Optional::TlsRoute => name.to_owned(),
        }
    }

    /// Whether `desired` has one.
    pub fn wanted(self, desired: &Children) -> bool {
        match self {
            Optional::TrustConfigMap => desired.trust_config_map.is_some(),
            Optional::Certificate => desired.certificate.is_some(),
            Optional::TlsRoute => desired.tls_route.is_some(),
        }
    }

    /// The kinds `desired` has none of.
    pub fn unwanted(desired: &Children) -> Vec<Optional> {
        Self::ALL
            .into_iter()
            .filter(|k| !k.wanted(desired))
            .collect()
    }
}

type Key = (String, String, Optional);

/// Optional children known not to exist.
#[derive(Default)]
pub struct Absent(Mutex<HashSet<Key>>);

impl Absent {
    fn key(ns: &str, name: &str, kind: Optional) -> Key {
        (ns.to_owned(), name.to_owned(), kind)
    }

    pub fn is_absent(&self, ns: &str, name: &str, kind: Optional) -> bool {
        let set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.contains(&Self::key(ns, name, kind))
    }

    pub fn mark_absent(&self, ns: &str, name: &str, kind: Optional) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(Self::key(ns, name, kind));
    }

    /// The operator applied it: it exists now.
    pub fn mark_present(&self, ns: &str, name: &str, kind: Optional) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&Self::key(ns, name, kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_is_per_atsign_and_kind_and_cleared_by_an_apply() {
        let a = Absent::default();
        assert!(!a.is_absent("ns", "alice", Optional::Certificate));
        a.mark_absent("ns", "alice", Optional::Certificate);
        assert!(a.is_absent("ns", "alice", Optional::Certificate));
        assert!(!a.is_absent("ns", "alice", Optional::TlsRoute));
        assert!(!a.is_absent("other", "alice", Optional::Certificate));
        a.mark_present("ns", "alice", Optional::Certificate);
        assert!(!a.is_absent("ns", "alice", Optional::Certificate));
    }

    #[test]
    fn child_names() {
        assert_eq!(Optional::TrustConfigMap.child_name("alice"), "alice-trust");
        assert_eq!(Optional::Certificate.child_name("alice"), "alice");
        assert_eq!(Optional::TlsRoute.child_name("alice"), "alice");
    }
}
