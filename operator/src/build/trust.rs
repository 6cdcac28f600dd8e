//! The trust bundle an atServer verifies peers and the atDirectory with: the CAs that issue the
//! fleet's certificates, then the fleet's bundle (the atDirectory's CA and any extra CAs). With
//! the built-in CA it travels in the TLS Secret the operator writes; with cert-manager, whose
//! Secret the operator does not write, in a ConfigMap of its own.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::names::{trust_config_map_name, TRUST_BUNDLE_KEY};
use super::object::meta;
use crate::resolve::Resolved;

/// The issuing CAs (each ending in one newline), then the rest of the bundle (which already
/// does); blank parts are left out.
pub fn trust_bundle(issuer_cas: &[String], rest: &str) -> String {
    let mut out = String::new();
    for ca in issuer_cas
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        out.push_str(ca);
        out.push('\n');
    }
    out.push_str(rest);
    out
}

pub fn config_map(r: &Resolved, trust: &str, owner: &OwnerReference) -> ConfigMap {
    ConfigMap {
        metadata: meta(trust_config_map_name(&r.name), r, Some(owner)),
        data: Some(BTreeMap::from([(
            TRUST_BUNDLE_KEY.to_owned(),
            trust.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}
