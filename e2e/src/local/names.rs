//! The names the local cluster installs under: namespaces, the class and the Helm release.

/// The operator's namespace, where its CA Secret lives.
pub const SYSTEM_NAMESPACE: &str = "atfleet-system";
/// The namespace the demo's Atsigns live in.
pub const NAMESPACE: &str = "fleet";
/// The installed class.
pub const CLASS: &str = "local";
/// The Helm release name the operator's RBAC is rendered for.
pub const RELEASE: &str = "atfleet";
