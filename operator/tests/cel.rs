//! The CEL rules of the generated CRD, evaluated client-side with kube's CEL engine against
//! new and old objects, as the API server would on create and update.

use kube::core::cel::{compile_schema, Validator};
use kube::CustomResourceExt;
use serde_json::{json, Value};

fn schema() -> Value {
    let crd = atfleet_operator::crd::Atsign::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("schema");
    serde_json::to_value(schema).expect("schema to JSON")
}

fn atsign(spec: Value) -> Value {
    json!({
        "apiVersion": "atfleet.dev/v1alpha1",
        "kind": "Atsign",
        "metadata": { "name": "alice", "namespace": "default" },
        "spec": spec,
    })
}

fn check(spec: Value, old: Option<Value>) -> Result<(), String> {
    let old = old.map(atsign);
    Validator::new()
        .validate(&schema(), &atsign(spec), old.as_ref())
        .map_err(|e| {
            e.as_slice()
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

#[test]
fn every_rule_compiles() {
    let compiled = compile_schema(&schema());
    assert!(
        !compiled.has_errors(),
        "{:?}",
        compiled.compilation_errors()
    );
}

#[test]
fn valid_atsigns_are_accepted() {
    for at in ["@alice", "@a", "@alice_01-x", "@alice🛠"] {
        assert_eq!(check(json!({ "atSign": at }), None), Ok(()), "{at}");
        assert_eq!(atfleet_operator::atsign::validate(at), Ok(()), "{at}");
    }
}

#[test]
fn invalid_atsigns_are_rejected_as_the_rust_validator_does() {
    let too_long = format!("@{}", "a".repeat(56));
    for at in [
        "alice",
        "@",
        "@Alice",
        "@al.ice",
        "@al ice",
        "@a:b",
        "@a/b",
        "@a#b",
        "@a[b]",
        "@a'b",
        too_long.as_str(),
    ] {
        let err = check(json!({ "atSign": at }), None).expect_err(at);
        assert!(err.contains("atSign must be"), "{at}: {err}");
        assert!(atfleet_operator::atsign::validate(at).is_err(), "{at}");
    }
}

#[test]
fn changing_the_atsign_is_rejected() {
    let err = check(
        json!({ "atSign": "@bob" }),
        Some(json!({ "atSign": "@alice" })),
    )
    .expect_err("immutable");
    assert!(err.contains("atSign is immutable"), "{err}");
    // Other fields may change.
    assert_eq!(
        check(
            json!({ "atSign": "@alice", "suspend": true }),
            Some(json!({ "atSign": "@alice" }))
        ),
        Ok(())
    );
}

#[test]
fn ports_must_be_in_range() {
    assert_eq!(
        check(
            json!({ "atSign": "@alice", "exposure": { "port": 6464 } }),
            None
        ),
        Ok(())
    );
    for port in [0, 65536, -1] {
        let err = check(
            json!({ "atSign": "@alice", "exposure": { "port": port } }),
            None,
        )
        .expect_err("port");
        assert!(err.contains("port must be between"), "{port}: {err}");
    }
    let err = check(
        json!({ "atSign": "@alice", "exposure": { "nodePort": 8080 } }),
        None,
    )
    .expect_err("nodePort");
    assert!(err.contains("nodePort must be between"), "{err}");
    let err = check(
        json!({ "atSign": "@alice", "tls": { "durationHours": 0 } }),
        None,
    )
    .expect_err("duration");
    assert!(err.contains("durationHours"), "{err}");
}

#[test]
fn enums_are_closed_in_the_schema() {
    let schema = schema();
    let exposure = &schema["properties"]["spec"]["properties"]["exposure"]["properties"]["mode"];
    let modes: Vec<&str> = exposure["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(modes, ["ClusterIP", "NodePort", "LoadBalancer", "TLSRoute"]);
    let retention =
        &schema["properties"]["spec"]["properties"]["storage"]["properties"]["retention"];
    let policies: Vec<&str> = retention["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(policies, ["Retain", "Delete"]);
}

fn check_named(name: &str) -> Result<(), String> {
    let mut object = atsign(json!({ "atSign": "@alice" }));
    object["metadata"]["name"] = json!(name);
    Validator::new()
        .validate(&schema(), &object, None)
        .map_err(|e| {
            e.as_slice()
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

#[test]
fn names_are_dns_1035_labels_that_leave_room_for_the_revision_label() {
    let longest = format!("a{}", "b".repeat(51));
    for name in ["alice", "a", "alice-01", longest.as_str()] {
        assert_eq!(check_named(name), Ok(()), "{name}");
    }
    let too_long = format!("a{}", "b".repeat(52));
    for name in [
        too_long.as_str(),
        "1alice",
        "alice-",
        "-alice",
        "al.ice",
        "al_ice",
    ] {
        let err = check_named(name).expect_err(name);
        assert!(
            err.contains("metadata.name must be a DNS-1035 label of at most 52 characters"),
            "{name}: {err}"
        );
    }
}

#[test]
fn the_immutability_message_names_both_atsigns_and_what_to_do() {
    let err = check(
        json!({ "atSign": "@bob" }),
        Some(json!({ "atSign": "@alice" })),
    )
    .expect_err("immutable");
    assert_eq!(
        err,
        "atSign is immutable: this Atsign serves @alice; to serve @bob, create a new Atsign (and \
         delete this one)"
    );
}

#[test]
fn every_string_a_rule_reads_is_bounded() {
    // The API server's cost estimator prices a rule by the longest string it may see.
    fn walk(path: &str, s: &Value, unbounded: &mut Vec<String>) {
        let reads_self = s["x-kubernetes-validations"].is_array();
        if reads_self && s["type"] == "string" && s["maxLength"].as_u64().is_none() {
            unbounded.push(path.to_owned());
        }
        if let Some(props) = s["properties"].as_object() {
            for (k, v) in props {
                walk(&format!("{path}.{k}"), v, unbounded);
            }
        }
        for k in ["items", "additionalProperties"] {
            if s[k].is_object() {
                walk(&format!("{path}[]"), &s[k], unbounded);
            }
        }
    }
    for schema in [
        schema(),
        serde_json::to_value(
            atfleet_operator::crd::AtServerClass::crd().spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema"),
        )
        .expect("json"),
    ] {
        let mut unbounded = Vec::new();
        walk("", &schema, &mut unbounded);
        assert!(
            unbounded.is_empty(),
            "strings read by rules without maxLength: {unbounded:?}"
        );
    }
    let at_sign = &schema()["properties"]["spec"]["properties"]["atSign"];
    assert_eq!(at_sign["maxLength"], 56);
}

#[test]
fn printer_columns_read_the_status_shape_once_each() {
    let crd = atfleet_operator::crd::Atsign::crd();
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default();
    let mut names: Vec<String> = columns.iter().map(|c| c.name.to_lowercase()).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate columns: {columns:?}");
    let ready = columns.iter().find(|c| c.name == "Ready").expect("Ready");
    assert_eq!(
        ready.json_path,
        ".status.conditions[?(@.type==\"Ready\")].status"
    );
    // The status the operator writes has exactly that shape.
    let status = serde_json::to_value(atfleet_operator::crd::AtsignStatus {
        conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Ready".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::UNIX_EPOCH,
            ),
        }],
        ..Default::default()
    })
    .expect("json");
    assert_eq!(status["conditions"][0]["type"], "Ready");
    assert_eq!(status["conditions"][0]["status"], "True");
}
