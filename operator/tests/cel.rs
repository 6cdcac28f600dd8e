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
