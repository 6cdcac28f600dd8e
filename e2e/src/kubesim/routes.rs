//! Request paths of the Kubernetes API, parsed into what they address.

/// A resource request: `/api/v1/...` or `/apis/{group}/{version}/...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    ResourceList { group: String, version: String },
    OpenApiV3Root,
    OpenApiV3 { group: String, version: String },
    OpenApiV2,
    Resource(ResourcePath),
}

pub fn parse(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    Some(match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["api", v] => Route::ResourceList {
            group: String::new(),
            version: v.to_string(),
        },
        ["api", v, rest @ ..] => Route::Resource(resource("", v, rest)?),
        ["apis"] => Route::GroupList,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::ResourceList {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["apis", g, v, rest @ ..] => Route::Resource(resource(g, v, rest)?),
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", "api", v] => Route::OpenApiV3 {
            group: String::new(),
            version: v.to_string(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3 {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["openapi", "v2"] => Route::OpenApiV2,
        _ => return None,
    })
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let base = ResourcePath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let named = |plural: &str, name: Option<&&str>, sub: Option<&&str>, namespace: Option<&str>| {
        ResourcePath {
            plural: plural.into(),
            name: name.map(|s| s.to_string()),
            subresource: sub.map(|s| s.to_string()),
            namespace: namespace.map(String::from),
            ..base.clone()
        }
    };
    Some(match rest {
        ["namespaces"] => named("namespaces", None, None, None),
        ["namespaces", n] => named("namespaces", Some(n), None, None),
        ["namespaces", n, sub @ ("status" | "finalize")] if group.is_empty() => {
            named("namespaces", Some(n), Some(sub), None)
        }
        ["namespaces", ns, plural] => named(plural, None, None, Some(ns)),
        ["namespaces", ns, plural, name] => named(plural, Some(name), None, Some(ns)),
        ["namespaces", ns, plural, name, sub] => named(plural, Some(name), Some(sub), Some(ns)),
        [plural] => named(plural, None, None, None),
        [plural, name] => named(plural, Some(name), None, None),
        [plural, name, sub] => named(plural, Some(name), Some(sub), None),
        _ => return None,
    })
}

/// The Kubernetes verb of a request on a resource path.
pub fn verb(method: &str, path: &ResourcePath, watch: bool) -> &'static str {
    match (method, path.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let r = parse("/api/v1/namespaces/ns/pods/p/status");
        let Some(Route::Resource(p)) = r else {
            panic!("not a resource: {r:?}")
        };
        assert_eq!(
            (
                p.namespace.as_deref(),
                p.plural.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            (Some("ns"), "pods", Some("p"), Some("status"))
        );
        let Some(Route::Resource(ns)) = parse("/api/v1/namespaces/kube-system") else {
            panic!("namespace")
        };
        assert_eq!(
            (ns.plural.as_str(), ns.name.as_deref(), ns.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        assert_eq!(parse("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Some(Route::OpenApiV3 {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/nonsense"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_never_panics(path in "(/[a-z0-9.{}-]{0,8}){0,9}") {
            if let Some(Route::Resource(p)) = parse(&path) {
                let _ = verb("GET", &p, true);
                prop_assert!(!p.plural.is_empty());
            }
        }
    }
}
