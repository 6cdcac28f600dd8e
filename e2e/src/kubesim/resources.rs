//! The resource types kubesim serves: the built-in kinds plus one entry per served version of each
//! installed CustomResourceDefinition.

use std::sync::Arc;

use serde_json::Value;

use super::schema::Schema;

/// Storage identity of a resource: objects of every version of a CRD live under one `GroupResource`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

/// One served `group/version/resource`.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    /// Has a `/status` subresource: main writes keep the stored status and status writes touch only it.
    pub status: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Present for custom resources: the version's `openAPIV3Schema`.
    pub schema: Option<Arc<Schema>>,
    pub custom: bool,
    /// `additionalPrinterColumns` of a CRD version.
    pub printer_columns: Vec<Value>,
    /// Where the `/scale` subresource reads and writes replicas, if the kind has one.
    pub scale: Option<ScalePaths>,
}

/// JSON paths (`.spec.replicas` style) behind a `/scale` subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// A path to a label selector string (CRDs) or `None` for `.spec.selector` (built-ins).
    pub label_selector: Option<String>,
}

impl ResourceType {
    /// Where objects are stored; events.k8s.io Events share the core Events' storage.
    pub fn group_resource(&self) -> GroupResource {
        let group = if self.is_new_event() {
            ""
        } else {
            self.group.as_str()
        };
        GroupResource {
            group: group.to_string(),
            resource: self.plural.clone(),
        }
    }

    pub fn is_new_event(&self) -> bool {
        self.group == "events.k8s.io" && self.kind == "Event"
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Kinds without a spec (ConfigMap, Secret, Event, …) carry no `metadata.generation`.
    pub fn tracks_generation(&self) -> bool {
        self.custom
            || matches!(
                self.kind.as_str(),
                "StatefulSet"
                    | "Deployment"
                    | "Service"
                    | "PersistentVolumeClaim"
                    | "Pod"
                    | "CustomResourceDefinition"
            )
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    status: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        true,
        &["ns"],
        &[],
    ),
    b("", "v1", "Node", "nodes", false, true, &["no"], &[]),
    b("", "v1", "Secret", "secrets", true, false, &[], &[]),
    b(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        false,
        &["cm"],
        &[],
    ),
    b(
        "",
        "v1",
        "Service",
        "services",
        true,
        true,
        &["svc"],
        &["all"],
    ),
    b(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        false,
        &["sa"],
        &[],
    ),
    b(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        true,
        &["pvc"],
        &[],
    ),
    b("", "v1", "Pod", "pods", true, true, &["po"], &["all"]),
    b("", "v1", "Event", "events", true, false, &["ev"], &[]),
    b(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        true,
        &["sts"],
        &["all"],
    ),
    b(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        true,
        &["deploy"],
        &["all"],
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        false,
        &[],
        &[],
    ),
    b(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        false,
        &["ev"],
        &[],
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        true,
        &["crd", "crds"],
        &["api-extensions"],
    ),
];

#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    status: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        status,
        short,
        categories,
    }
}

/// `kubectl get` columns for built-in kinds, in the CRD `additionalPrinterColumns` shape.
fn builtin_columns(group: &str, kind: &str) -> Vec<Value> {
    let cols: &[(&str, &str)] = match (group, kind) {
        ("events.k8s.io", _) => &[
            ("Type", ".type"),
            ("Reason", ".reason"),
            ("Object", ".regarding.name"),
        ],
        (_, kind) => match kind {
            "Namespace" | "PersistentVolumeClaim" => &[("Status", ".status.phase")],
            "Pod" => &[
                ("Status", ".status.phase"),
                ("IP", ".status.podIP"),
                ("Node", ".spec.nodeName"),
            ],
            "StatefulSet" | "Deployment" => &[
                ("Replicas", ".spec.replicas"),
                ("Ready", ".status.readyReplicas"),
            ],
            "Service" => &[("Type", ".spec.type"), ("Cluster-IP", ".spec.clusterIP")],
            "Event" => &[
                ("Type", ".type"),
                ("Reason", ".reason"),
                ("Object", ".involvedObject.name"),
            ],
            _ => &[],
        },
    };
    cols.iter()
        .map(|(name, path)| serde_json::json!({"name": name, "type": "string", "jsonPath": path}))
        .collect()
}

/// All served resource types. CRD entries are rebuilt whenever a CRD changes.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = BUILTINS
            .iter()
            .map(|t| ResourceType {
                group: t.group.into(),
                version: t.version.into(),
                kind: t.kind.into(),
                plural: t.plural.into(),
                singular: t.kind.to_lowercase(),
                namespaced: t.namespaced,
                status: t.status,
                short_names: t.short.iter().map(|s| s.to_string()).collect(),
                categories: t.categories.iter().map(|s| s.to_string()).collect(),
                schema: None,
                custom: false,
                printer_columns: builtin_columns(t.group, t.kind),
                scale: matches!(t.kind, "StatefulSet" | "Deployment").then(|| ScalePaths {
                    spec_replicas: ".spec.replicas".into(),
                    status_replicas: ".status.replicas".into(),
                    label_selector: None,
                }),
            })
            .collect();
        Self { types }
    }
}

impl Registry {
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Any served version of a group/resource (used when the version does not matter).
    pub fn any_version(&self, gr: &GroupResource) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == gr.group && t.plural == gr.resource)
    }

    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    /// Served `(group, [versions])` in a stable order, core group first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) if !versions.contains(&t.version) => {
                    versions.push(t.version.clone())
                }
                Some(_) => {}
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// Replaces the types served for a CRD (`name` = `plural.group`) with `types`.
    pub fn set_custom(&mut self, group: &str, plural: &str, types: Vec<ResourceType>) {
        self.types
            .retain(|t| !(t.custom && t.group == group && t.plural == plural));
        self.types.extend(types);
    }
}

/// The resource types a CRD object declares, or a reason why it is invalid.
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let spec = &crd["spec"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let group = text(&spec["group"]);
    let names = &spec["names"];
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    let singular = match names["singular"].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => kind.to_lowercase(),
    };
    if group.is_empty() {
        errors.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        errors.push(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        errors.push(("spec.names.kind".into(), "Required value".into()));
    }
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if name != format!("{plural}.{group}") {
        errors.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => {
            errors.push((
                "spec.scope".into(),
                "Unsupported value: must be Namespaced or Cluster".into(),
            ));
            false
        }
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errors.push(("spec.versions".into(), "Required value".into()));
    }
    if versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
        && !versions.is_empty()
    {
        errors.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .map(|v| ResourceType {
            group: group.clone(),
            version: text(&v["name"]),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            status: v["subresources"]["status"].is_object(),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            schema: v["schema"]
                .get("openAPIV3Schema")
                .map(|s| Arc::new(Schema::new(s.clone()))),
            custom: true,
            printer_columns: v["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            scale: v["subresources"]["scale"].as_object().map(|s| ScalePaths {
                spec_replicas: text(&s.get("specReplicasPath").cloned().unwrap_or_default()),
                status_replicas: text(&s.get("statusReplicasPath").cloned().unwrap_or_default()),
                label_selector: s
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(String::from),
            }),
        })
        .collect())
}
