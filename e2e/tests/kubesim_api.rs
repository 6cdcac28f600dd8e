//! kubesim conformance through `kube::Client`: CRUD and resourceVersions, watch, server-side apply,
//! status, finalizers, garbage collection, custom resource validation, pagination, selectors,
//! services, namespaces, discovery, the audit log and fault injection.

mod common;

use std::time::Duration;

use atfleet_e2e::kubesim::{Config, FaultConfig};
use common::{eventually, install_crd, start, start_with, status, widget_crd};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::ObjectMeta;
use serde_json::{json, Value};

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn widgets(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    )
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}))
        .expect("widget")
}

/// An object's resourceVersion, which kubesim keeps numeric.
fn resource_version(object: &impl kube::Resource) -> u64 {
    object
        .meta()
        .resource_version
        .clone()
        .unwrap_or_default()
        .parse()
        .expect("numeric rv")
}

#[tokio::test]
async fn crud_resource_versions_conflicts_and_generation() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = cms
        .create(&PostParams::default(), &cm("a", &[("k", "1")]))
        .await
        .expect("create");
    let rv1 = resource_version(&created);
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        status(cms.create(&PostParams::default(), &cm("a", &[])).await).code,
        409
    );

    let mut fresh = cms.get("a").await.expect("get");
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    let rv2 = resource_version(&updated);
    assert!(rv2 > rv1);
    // `fresh` still carries the old resourceVersion.
    let stale = status(cms.replace("a", &PostParams::default(), &fresh).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(status(cms.get("missing").await).code, 404);

    install_crd(&client, &widget_crd()).await;
    let w = widgets(&client);
    let created = w
        .create(
            &PostParams::default(),
            &widget("w", json!({"owner": "@alice", "size": 1})),
        )
        .await
        .expect("widget");
    assert_eq!(created.metadata.generation, Some(1));
    let labelled = w
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label");
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let status_patch = Patch::Merge(json!({"status": {"phase": "Ready"}}));
    let with_status = w
        .patch_status("w", &PatchParams::default(), &status_patch)
        .await
        .expect("status");
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );
    let grown = w
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .expect("spec");
    assert_eq!(grown.metadata.generation, Some(2));
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_resumes_from_history_and_reports_gone() {
    let sim = start_with(Config {
        history_limit: 8,
        ..Config::default()
    })
    .await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let first = cms
        .create(&PostParams::default(), &cm("w0", &[]))
        .await
        .expect("create");
    let from = first.metadata.resource_version.clone().unwrap_or_default();
    cms.create(&PostParams::default(), &cm("w1", &[]))
        .await
        .expect("create");
    cms.patch(
        "w0",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .expect("patch");
    cms.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");

    let mut stream = cms
        .watch(&WatchParams::default(), &from)
        .await
        .expect("watch")
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream
            .try_next()
            .await
            .expect("event")
            .expect("stream open")
        {
            WatchEvent::Added(o) => {
                seen.push(format!("ADDED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Modified(o) => {
                seen.push(format!("MODIFIED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Deleted(o) => {
                seen.push(format!("DELETED {}", o.metadata.name.unwrap_or_default()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED w1", "MODIFIED w0", "DELETED w1"]);
    // Live events follow the replay on the same stream.
    cms.create(&PostParams::default(), &cm("w2", &[]))
        .await
        .expect("create");
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("w2")),
        other => panic!("unexpected {other:?}"),
    }

    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("f{i}"), &[]))
            .await
            .expect("create");
    }
    let mut old = cms
        .watch(&WatchParams::default(), &from)
        .await
        .expect("watch")
        .boxed();
    match old.try_next().await.expect("event") {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_bookmarks_selectors_and_timeout() {
    let sim = start_with(Config {
        bookmark_interval: Duration::from_millis(50),
        ..Config::default()
    })
    .await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut labelled = cm("sel", &[]);
    labelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    cms.create(&PostParams::default(), &labelled)
        .await
        .expect("create");

    let params = WatchParams::default().labels("team in (a,b)").timeout(5);
    let mut stream = cms.watch(&params, "0").await.expect("watch").boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("sel")),
        other => panic!("unexpected {other:?}"),
    }
    // Relabelling out of the selection is a DELETED event for this watcher.
    cms.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "c"}}})),
    )
    .await
    .expect("relabel");
    let mut deleted = false;
    let mut bookmark = false;
    while !(deleted && bookmark) {
        match stream.try_next().await.expect("event").expect("open") {
            WatchEvent::Deleted(o) => deleted = o.metadata.name.as_deref() == Some("sel"),
            WatchEvent::Bookmark(b) => {
                bookmark = deleted && !b.metadata.resource_version.is_empty()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let short = WatchParams::default().timeout(1);
    let mut ends = cms.watch(&short, "0").await.expect("watch").boxed();
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = ends.next().await {
            e.expect("event");
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "the server closes a watch after timeoutSeconds"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_conflicts_force_and_removal() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let config = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data});

    let created = cms
        .patch(
            "ssa",
            &PatchParams::apply("alpha"),
            &Patch::Apply(config(json!({"a": "1", "shared": "s"}))),
        )
        .await
        .expect("create on apply");
    let managed = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(
        (
            managed.len(),
            managed[0].manager.as_deref(),
            managed[0].operation.as_deref()
        ),
        (1, Some("alpha"), Some("Apply"))
    );

    let conflict = status(
        cms.patch(
            "ssa",
            &PatchParams::apply("beta"),
            &Patch::Apply(config(json!({"a": "2"}))),
        )
        .await,
    );
    assert_eq!(conflict.code, 409);
    let causes = conflict.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(causes.len(), 1);
    assert_eq!(
        (causes[0].reason.as_str(), causes[0].field.as_str()),
        ("FieldManagerConflict", ".data.a")
    );

    // Agreeing on a value shares ownership; forcing takes the contested field.
    cms.patch(
        "ssa",
        &PatchParams::apply("beta").force(),
        &Patch::Apply(config(json!({"a": "2", "shared": "s"}))),
    )
    .await
    .expect("forced");
    let after = cms.get("ssa").await.expect("get");
    assert_eq!(
        after
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("2")
    );
    // Re-applying the same configuration changes nothing, not even the resourceVersion.
    let same = cms
        .patch(
            "ssa",
            &PatchParams::apply("beta"),
            &Patch::Apply(config(json!({"a": "2", "shared": "s"}))),
        )
        .await
        .expect("no-op apply");
    assert_eq!(
        same.metadata.resource_version,
        after.metadata.resource_version
    );

    // alpha drops every field: `a` (now beta's) and `shared` (co-owned) stay, nothing else is left to alpha.
    let dropped = cms
        .patch(
            "ssa",
            &PatchParams::apply("alpha"),
            &Patch::Apply(config(json!({"only": "alpha"}))),
        )
        .await
        .expect("reapply");
    let data = dropped.data.unwrap_or_default();
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["a", "only", "shared"]
    );
    let gone = cms
        .patch(
            "ssa",
            &PatchParams::apply("alpha"),
            &Patch::Apply(config(json!({}))),
        )
        .await
        .expect("reapply");
    assert!(
        !gone.data.unwrap_or_default().contains_key("only"),
        "fields no one else owns are removed"
    );

    // An ordinary update takes ownership away from the applier, so the next apply conflicts.
    cms.patch(
        "ssa",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "3"}})),
    )
    .await
    .expect("merge patch");
    let again = status(
        cms.patch(
            "ssa",
            &PatchParams::apply("beta"),
            &Patch::Apply(config(json!({"a": "2", "shared": "s"}))),
        )
        .await,
    );
    assert_eq!(again.code, 409);

    // JSON patch.
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/j", "value": "p"}]))
            .expect("ops");
    let patched = cms
        .patch("ssa", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(
        patched
            .data
            .unwrap_or_default()
            .get("j")
            .map(String::as_str),
        Some("p")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_separate_from_the_main_resource() {
    let sim = start().await;
    let client = sim.client().expect("client");
    install_crd(&client, &widget_crd()).await;
    let w = widgets(&client);
    let mut obj = widget("s", json!({"owner": "@s"}));
    obj.data["status"] = json!({"phase": "ignored"});
    let created = w
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );
    let patched = w
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Up"}, "spec": {"size": 9}})),
        )
        .await
        .expect("status");
    assert_eq!(
        (
            patched.data["status"]["phase"].as_str(),
            patched.data["spec"]["size"].as_i64()
        ),
        (Some("Up"), Some(1))
    );
    let main = w
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Down"}})),
        )
        .await
        .expect("main");
    assert_eq!(main.data["status"]["phase"], "Up");
    let applied = w
        .patch_status("s", &PatchParams::apply("ctl").force(), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Applied"}})))
        .await
        .expect("status apply");
    assert_eq!(applied.data["status"]["phase"], "Applied");
    let entry = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("ctl"));
    assert_eq!(
        entry.and_then(|e| e.subresource),
        Some("status".to_string())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn finalizers_gate_deletion() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut guarded = cm("fin", &[]);
    guarded.metadata.finalizers = Some(vec!["example.com/guard".into()]);
    cms.create(&PostParams::default(), &guarded)
        .await
        .expect("create");
    let marked = cms
        .delete("fin", &DeleteParams::default())
        .await
        .expect("delete");
    let still = marked.left().expect("object still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    let adding = cms
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/guard", "x/new"]}})),
        )
        .await;
    assert_eq!(status(adding).code, 403, "no new finalizers while deleting");
    let rv = still.metadata.resource_version.clone().unwrap_or_default();
    let mut stream = cms
        .watch(&WatchParams::default().fields("metadata.name=fin"), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Deleted(o)) => assert_eq!(o.metadata.name.as_deref(), Some("fin")),
        other => panic!("expected DELETED, got {other:?}"),
    }
    assert_eq!(status(cms.get("fin").await).code, 404);
    sim.shutdown().await;
}

fn owned_by(name: &str, owner: &StatefulSet) -> ConfigMap {
    let mut c = cm(name, &[]);
    c.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: owner.metadata.name.clone().unwrap_or_default(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ]);
    c
}

fn sts(name: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .expect("sts")
}

/// Creates StatefulSet `name` and a ConfigMap `<name>-dep` it owns, carrying `finalizers`.
async fn owner_and_dependent(
    sets: &Api<StatefulSet>,
    cms: &Api<ConfigMap>,
    name: &str,
    finalizers: &[&str],
) {
    let owner = sets
        .create(&PostParams::default(), &sts(name))
        .await
        .expect("owner");
    let mut dependent = owned_by(&format!("{name}-dep"), &owner);
    if !finalizers.is_empty() {
        dependent.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
    }
    cms.create(&PostParams::default(), &dependent)
        .await
        .expect("dependent");
}

#[tokio::test]
async fn owner_deletion_cascades_in_background_foreground_or_orphans() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    owner_and_dependent(&sets, &cms, "bg", &[]).await;
    sets.delete("bg", &DeleteParams::background())
        .await
        .expect("delete");
    assert_eq!(
        status(cms.get("bg-dep").await).code,
        404,
        "dependents go with their owner"
    );

    owner_and_dependent(&sets, &cms, "fg", &["example.com/hold"]).await;
    sets.delete("fg", &DeleteParams::foreground())
        .await
        .expect("delete");
    let waiting = sets
        .get("fg")
        .await
        .expect("owner waits for its dependents");
    assert!(waiting
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));
    cms.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert_eq!(status(cms.get("fg-dep").await).code, 404);
    assert_eq!(
        status(sets.get("fg").await).code,
        404,
        "owner goes once its dependents are gone"
    );

    owner_and_dependent(&sets, &cms, "or", &[]).await;
    sets.delete("or", &DeleteParams::orphan())
        .await
        .expect("delete");
    let orphan = cms.get("or-dep").await.expect("orphan survives");
    assert!(orphan.metadata.owner_references.is_none());
    assert_eq!(status(sets.get("or").await).code, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn custom_resources_are_validated_pruned_and_defaulted() {
    let sim = start().await;
    let client = sim.client().expect("client");
    install_crd(&client, &widget_crd()).await;
    let w = widgets(&client);
    let pp = PostParams::default();
    let ok = w
        .create(
            &pp,
            &widget(
                "v",
                json!({"owner": "@v", "junk": true, "extra": {"free": [1]}}),
            ),
        )
        .await
        .expect("create");
    assert_eq!(
        ok.data["spec"],
        json!({"owner": "@v", "size": 1, "maxSize": 10, "extra": {"free": [1]}})
    );

    let wrong_type = status(
        w.create(&pp, &widget("t", json!({"owner": "@t", "size": "big"})))
            .await,
    );
    assert_eq!(
        (wrong_type.code, wrong_type.reason.as_str()),
        (422, "Invalid")
    );
    let fields: Vec<String> = wrong_type
        .details
        .map(|d| d.causes.into_iter().map(|c| c.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["spec.size"]);
    assert_eq!(
        status(w.create(&pp, &widget("m", json!({"size": 1}))).await).code,
        422,
        "required field"
    );
    assert_eq!(
        status(w.create(&pp, &widget("p", json!({"owner": "bob"}))).await).code,
        422,
        "CEL pattern"
    );
    let too_big = status(
        w.create(&pp, &widget("b", json!({"owner": "@b", "size": 11})))
            .await,
    );
    assert!(
        too_big.message.contains("size must not exceed maxSize"),
        "{}",
        too_big.message
    );
    let immutable = status(
        w.patch(
            "v",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"owner": "@other"}})),
        )
        .await,
    );
    assert!(
        immutable.message.contains("owner is immutable"),
        "{}",
        immutable.message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_paginate_and_filter() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for i in 0..7 {
        let mut c = cm(&format!("p{i}"), &[]);
        c.metadata.labels = Some(
            [(
                "parity".to_string(),
                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
            )]
            .into(),
        );
        cms.create(&PostParams::default(), &c)
            .await
            .expect("create");
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(3);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.expect("list");
        pages += 1;
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!((pages, names.len()), (3, 7));
    let names = |lp: ListParams| {
        let cms = cms.clone();
        async move {
            let list = cms.list(&lp).await.expect("list");
            list.items
                .into_iter()
                .filter_map(|c| c.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    let labelled = |selector: &str| names(ListParams::default().labels(selector));
    assert_eq!(labelled("parity=odd").await, ["p1", "p3", "p5"]);
    assert_eq!(labelled("parity!=odd,parity").await.len(), 4);
    assert_eq!(labelled("parity notin (even)").await.len(), 3);
    assert_eq!(labelled("!parity").await.len(), 0);
    assert_eq!(
        names(ListParams::default().fields("metadata.name=p4")).await,
        ["p4"]
    );
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default().fields("metadata.namespace=kube-system"))
            .await
            .expect("list")
            .items
            .len(),
        0
    );
    assert_eq!(
        status(cms.list(&ListParams::default().labels("a in b")).await).code,
        400
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn services_get_unique_node_ports_and_namespaces_must_exist() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let svc = |name: &str, node_port: Option<i32>| -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"type": "NodePort",
            "ports": [{"port": 6464, "nodePort": node_port}]}}),
        )
        .expect("svc")
    };
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let port_of = |s: Service| {
        s.spec
            .and_then(|s| s.ports)
            .and_then(|p| p.first().and_then(|p| p.node_port))
    };
    let a = port_of(
        services
            .create(&PostParams::default(), &svc("a", None))
            .await
            .expect("a"),
    );
    let b = port_of(
        services
            .create(&PostParams::default(), &svc("b", None))
            .await
            .expect("b"),
    );
    assert!(
        a.is_some_and(|p| (30000..=32767).contains(&p)) && a != b,
        "{a:?} {b:?}"
    );
    assert_eq!(
        status(services.create(&PostParams::default(), &svc("c", a)).await).code,
        422,
        "taken port"
    );
    assert_eq!(
        status(
            services
                .create(&PostParams::default(), &svc("d", Some(80)))
                .await
        )
        .code,
        422,
        "out of range"
    );

    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let missing = status(
        elsewhere
            .create(&PostParams::default(), &cm("x", &[]))
            .await,
    );
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
    let system: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    system
        .create(&PostParams::default(), &cm("x", &[]))
        .await
        .expect("kube-system always exists");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let team: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    team.create(&PostParams::default(), &cm("x", &[]))
        .await
        .expect("create in team");
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .expect("delete namespace");
    assert_eq!(
        status(team.get("x").await).code,
        404,
        "namespace contents are deleted"
    );
    assert_eq!(status(namespaces.get("team").await).code, 404);
    assert_eq!(
        status(namespaces.delete("default", &DeleteParams::default()).await).code,
        403
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn discovery_follows_crds() {
    let sim = start().await;
    let client = sim.client().expect("client");
    install_crd(&client, &widget_crd()).await;
    // Installers re-apply CRDs on every start; an unchanged CRD must not change.
    let crd_api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let apply = PatchParams::apply("installer");
    let mut config = widget_crd();
    config.metadata.managed_fields = None;
    let first = crd_api
        .patch("widgets.example.com", &apply, &Patch::Apply(&config))
        .await
        .expect("apply");
    let again = crd_api
        .patch("widgets.example.com", &apply, &Patch::Apply(&config))
        .await
        .expect("re-apply");
    assert_eq!(
        first.metadata.resource_version,
        again.metadata.resource_version
    );
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("widget discovered");
    assert_eq!(
        (ar.plural.as_str(), caps.scope),
        ("widgets", kube::discovery::Scope::Namespaced)
    );
    assert!(discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "StatefulSet"))
        .is_some());

    let w = widgets(&client);
    w.create(
        &PostParams::default(),
        &widget("gone", json!({"owner": "@g"})),
    )
    .await
    .expect("widget");
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete CRD");
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    assert!(discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .is_none());
    assert_eq!(status(w.list(&ListParams::default()).await).code, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn audit_log_and_fault_injection() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    sim.faults().set(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    assert_eq!(
        status(cms.create(&PostParams::default(), &cm("f", &[])).await).code,
        500
    );
    cms.list(&ListParams::default())
        .await
        .expect("reads are not affected");
    sim.faults().set(FaultConfig {
        conflict_rate: 1.0,
        ..FaultConfig::default()
    });
    assert_eq!(
        status(cms.create(&PostParams::default(), &cm("f", &[])).await).code,
        409
    );
    sim.faults().set(FaultConfig::default());
    cms.create(&PostParams::default(), &cm("f", &[]))
        .await
        .expect("create");
    cms.get("f").await.expect("get");

    let log = sim.audit().events();
    let summary: Vec<(String, String, String, u16)> = log
        .iter()
        .filter(|e| e.resource == "configmaps")
        .map(|e| (e.verb.clone(), e.namespace.clone(), e.name.clone(), e.code))
        .collect();
    let expected = [
        ("create", "default", "", 500),
        ("list", "default", "", 200),
        ("create", "default", "", 409),
        ("create", "default", "", 201),
        ("get", "default", "f", 200),
    ];
    let expected: Vec<(String, String, String, u16)> = expected
        .iter()
        .map(|(v, n, o, c)| (v.to_string(), n.to_string(), o.to_string(), *c))
        .collect();
    assert_eq!(summary, expected);
    sim.shutdown().await;
}

#[tokio::test]
async fn deadline_helper_sees_changes() {
    // `eventually` is how tests wait on state changed by other tasks.
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let writer = cms.clone();
    let task = tokio::spawn(async move {
        writer
            .create(&PostParams::default(), &cm("later", &[]))
            .await
    });
    eventually("the configmap", || {
        let cms = cms.clone();
        async move { cms.get_opt("later").await.ok().flatten().is_some() }
    })
    .await;
    task.await.expect("join").expect("created");
    sim.shutdown().await;
}

#[tokio::test]
async fn scheduled_pods_delete_gracefully_and_secrets_fold_string_data() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::default_namespaced(client.clone());
    let pod = |name: &str, node: Option<&str>| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}))
        .expect("pod")
    };
    let pending = pods
        .create(&PostParams::default(), &pod("unscheduled", None))
        .await
        .expect("create");
    assert_eq!(
        pending.status.and_then(|s| s.phase).as_deref(),
        Some("Pending")
    );
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(
        status(pods.get("unscheduled").await).code,
        404,
        "no kubelet to wait for"
    );

    pods.create(&PostParams::default(), &pod("running", Some("node-1")))
        .await
        .expect("create");
    pods.delete("running", &DeleteParams::default())
        .await
        .expect("delete");
    let terminating = pods
        .get("running")
        .await
        .expect("the kubelet still has to stop it");
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete("running", &DeleteParams::default().grace_period(0))
        .await
        .expect("force");
    assert_eq!(status(pods.get("running").await).code, 404);

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::default_namespaced(client.clone());
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"token": "abc"}}))
            .expect("secret");
    let stored = secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create");
    assert!(stored.string_data.is_none());
    let token = stored
        .data
        .unwrap_or_default()
        .get("token")
        .map(|b| b.0.clone());
    assert_eq!(token.as_deref(), Some(&b"abc"[..]));
    sim.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watches_finish_their_initial_events() {
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &cm("one", &[]))
        .await
        .expect("create");
    let config = kube::runtime::watcher::Config::default().streaming_lists();
    let mut events = kube::runtime::watcher(cms.clone(), config).boxed();
    let mut initial = Vec::new();
    loop {
        match events.try_next().await.expect("watcher").expect("open") {
            kube::runtime::watcher::Event::Init => {}
            kube::runtime::watcher::Event::InitApply(c) => {
                initial.push(c.metadata.name.unwrap_or_default())
            }
            kube::runtime::watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["one"]);
    cms.create(&PostParams::default(), &cm("two", &[]))
        .await
        .expect("create");
    match events.try_next().await.expect("watcher") {
        Some(kube::runtime::watcher::Event::Apply(c)) => {
            assert_eq!(c.metadata.name.as_deref(), Some("two"))
        }
        other => panic!("unexpected {other:?}"),
    }
    let listed = sim
        .audit()
        .events()
        .iter()
        .any(|e| e.verb == "list" && e.resource == "configmaps");
    assert!(!listed, "the initial state came through the watch");
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn injected_latency_delays_requests() {
    // With the clock paused, the server's delay advances virtual time instead of wall time.
    let sim = start().await;
    let client = sim.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let latency = Duration::from_secs(7);
    sim.faults().set(FaultConfig {
        latency,
        ..FaultConfig::default()
    });
    let before = tokio::time::Instant::now();
    cms.list(&ListParams::default()).await.expect("list");
    assert!(before.elapsed() >= latency, "{:?}", before.elapsed());
    sim.shutdown().await;
}

#[tokio::test]
async fn appliers_share_keyed_lists_item_by_item() {
    let sim = start().await;
    let client = sim.client().expect("client");
    install_crd(&client, &widget_crd()).await;
    let w = widgets(&client);
    let config = |ports: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "l"},
                                       "spec": {"owner": "@l", "ports": ports}})
    };
    let apply = |who: &'static str| PatchParams::apply(who);
    w.patch(
        "l",
        &apply("a"),
        &Patch::Apply(config(json!([{"name": "http", "port": 80}]))),
    )
    .await
    .expect("a");
    w.patch(
        "l",
        &apply("b"),
        &Patch::Apply(config(json!([{"name": "tls", "port": 443}]))),
    )
    .await
    .expect("b");
    let names = |o: &DynamicObject| -> Vec<String> {
        o.data["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(names(&w.get("l").await.expect("get")), ["http", "tls"]);
    let clash = status(
        w.patch(
            "l",
            &apply("b"),
            &Patch::Apply(config(json!([{"name": "http", "port": 8080}]))),
        )
        .await,
    );
    assert_eq!(
        clash.details.map(|d| d.causes.len()),
        Some(1),
        "b may not change a's port"
    );
    let dropped = w
        .patch("l", &apply("a"), &Patch::Apply(config(json!([]))))
        .await
        .expect("a drops its item");
    assert_eq!(names(&dropped), ["tls"]);

    // Built-in kinds merge containers by name the same way.
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let with = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
        "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "s"}},
                 "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": containers}}}})
    };
    sets.patch(
        "s",
        &apply("a"),
        &Patch::Apply(with(json!([{"name": "app", "image": "app:1"}]))),
    )
    .await
    .expect("a");
    sets.patch(
        "s",
        &apply("sidecar"),
        &Patch::Apply(with(json!([{"name": "proxy", "image": "proxy:1"}]))),
    )
    .await
    .expect("sidecar");
    let s = sets
        .patch(
            "s",
            &apply("a"),
            &Patch::Apply(with(json!([{"name": "app", "image": "app:2"}]))),
        )
        .await
        .expect("a again");
    let images: Vec<String> = s
        .spec
        .template
        .spec
        .map(|p| p.containers)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.image)
        .collect();
    assert_eq!(images, ["app:2", "proxy:1"]);
    sim.shutdown().await;
}
