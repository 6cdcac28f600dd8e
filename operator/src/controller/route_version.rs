//! Which `TLSRoute` version the cluster serves, found by discovery and remembered for a while
//! (Gateway API can be upgraded under a running operator). Discovery documents are readable by
//! every authenticated identity, so this needs no RBAC.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::build::TlsRouteVersion;

const GROUP: &str = "gateway.networking.k8s.io";
/// How long one answer is used before the next discovery.
const REMEMBER: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct RouteVersion {
    found: Mutex<Option<(TlsRouteVersion, Instant)>>,
}

impl RouteVersion {
    /// The served version; `v1alpha2` while discovery fails or Gateway API is not installed
    /// (then a TLSRoute cannot be applied anyway, and its apply error says so).
    pub async fn get(&self, client: &kube::Client) -> TlsRouteVersion {
        let mut found = self.found.lock().await;
        if let Some((version, at)) = *found {
            if at.elapsed() < REMEMBER {
                return version;
            }
        }
        match kube::discovery::group(client, GROUP).await {
            Ok(group) => {
                let served: Vec<(String, Vec<String>)> = group
                    .versions()
                    .map(|v| {
                        let kinds = group
                            .versioned_resources(v)
                            .into_iter()
                            .map(|(r, _)| r.kind)
                            .collect();
                        (v.to_owned(), kinds)
                    })
                    .collect();
                let version =
                    TlsRouteVersion::choose(served.iter().map(|(v, k)| (v.as_str(), k.clone())));
                *found = Some((version, Instant::now()));
                version
            }
            Err(e) => {
                tracing::debug!(error = %e, "Gateway API discovery");
                TlsRouteVersion::default()
            }
        }
    }
}
