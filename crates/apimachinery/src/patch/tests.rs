use serde_json::json;

use super::*;

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "front"}, "finalizers": ["x", "y"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "side", "image": "side:1"}
            ],
            "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]
        }
    })
}

fn smp_kind(kind: (&str, &str), original: &Value, patch: Value) -> Result<Value, PatchError> {
    let meta = PatchMeta::for_kind(kind.0, "v1", kind.1).unwrap();
    apply(
        PatchType::StrategicMergePatch,
        original,
        patch.to_string().as_bytes(),
        Some(&meta),
    )
}

fn smp(original: &Value, patch: Value) -> Value {
    smp_kind(("", "Pod"), original, patch).unwrap()
}

fn smp_err(original: &Value, patch: Value) -> PatchError {
    smp_kind(("", "Pod"), original, patch).unwrap_err()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn containers_merge_by_name_and_keep_the_others() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}}),
    );
    assert_eq!(out["spec"]["containers"][0]["image"], "app:2");
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}]),
        "unpatched fields stay"
    );
    assert_eq!(names(&out["spec"]["containers"]), ["app", "side"]);
    assert_eq!(out["metadata"], pod()["metadata"], "untouched parts stay");

    let merge = apply(
        PatchType::MergePatch,
        &pod(),
        br#"{"spec":{"containers":[{"name":"app","image":"app:2"}]}}"#,
        None,
    )
    .unwrap();
    assert_eq!(
        names(&merge["spec"]["containers"]),
        ["app"],
        "a JSON merge patch replaces lists"
    );
}

#[test]
fn nested_lists_merge_by_their_own_keys() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "app",
            "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
            "ports": [{"containerPort": 443}]}]}}),
    );
    let app = &out["spec"]["containers"][0];
    assert_eq!(
        app["env"],
        json!([{"name": "A", "value": "2"}, {"name": "B", "value": "3"}])
    );
    assert_eq!(
        app["ports"],
        json!([{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}])
    );
}

#[test]
fn new_items_without_an_order_come_first_like_upstream() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "new", "image": "n:1"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["new", "app", "side"]);
}

#[test]
fn atomic_lists_are_replaced() {
    let out = smp(
        &pod(),
        json!({"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}),
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "c", "operator": "Exists"}])
    );
}

#[test]
fn delete_directive_removes_one_container() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["app"]);
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "missing", "$patch": "delete"}]}}),
    );
    assert_eq!(
        names(&out["spec"]["containers"]),
        ["app", "side"],
        "deleting a missing item is a no-op"
    );
}

#[test]
fn replace_directive_on_lists_and_maps() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "only", "image": "o:1"}])
    );
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"$patch": "replace", "b": "2"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({}),
        "upstream leaves an empty map"
    );
}

#[test]
fn label_and_annotation_maps_merge_as_kubectl_label_sends_them() {
    // `kubectl label pod p env=prod tier-` and `kubectl annotate pod p note=x`.
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"env": "prod", "tier": null}}}),
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "env": "prod"})
    );
    let out = smp(
        &pod(),
        json!({"metadata": {"annotations": {"note": "x", "gone": null}}}),
    );
    assert_eq!(
        out["metadata"]["annotations"],
        json!({"note": "x"}),
        "nulls are dropped from new maps"
    );
}

#[test]
fn null_deletes_a_key() {
    let out = smp(
        &pod(),
        json!({"metadata": {"finalizers": null}, "spec": {"tolerations": null, "missing": null}}),
    );
    assert!(out["metadata"].get("finalizers").is_none());
    assert!(out["spec"].get("tolerations").is_none());
    assert!(out["spec"].get("missing").is_none());
}

#[test]
fn finalizers_merge_as_a_primitive_list() {
    let out = smp(&pod(), json!({"metadata": {"finalizers": ["z", "x"]}}));
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["z", "x", "y"]),
        "patch order, then server-only items"
    );
}

#[test]
fn delete_from_primitive_list() {
    let out = smp(
        &pod(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
    let out = smp(
        &pod(),
        json!({"metadata": {"$setElementOrder/finalizers": ["y", "z"], "$deleteFromPrimitiveList/finalizers": ["x"], "finalizers": ["z"]}}),
    );
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["y", "z"]),
        "kubectl apply removing x and adding z"
    );
    let out = smp(
        &pod(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["nope"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    let no_finalizers = json!({"metadata": {"name": "p"}});
    let out = smp(
        &no_finalizers,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
    );
    assert_eq!(out, no_finalizers, "a delete list never creates the list");
}

#[test]
fn set_element_order_reorders_merged_lists() {
    let out = smp(
        &pod(),
        json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                        "containers": [{"name": "side", "image": "side:2"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["side", "app"]);
    assert_eq!(out["spec"]["containers"][0]["image"], "side:2");

    // kubectl apply adding a container at the end.
    let out = smp(
        &pod(),
        json!({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}, {"name": "new"}],
                        "containers": [{"name": "new", "image": "n:1"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["app", "side", "new"]);
}

fn containers(names: &[&str]) -> Value {
    json!({"spec": {"containers": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}})
}

fn order(names: &[&str]) -> Value {
    Value::from(names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>())
}

#[test]
fn set_element_order_with_server_only_items_follows_upstream_cases() {
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (
            &["1", "3", "4", "2", "9"],
            &["4", "2", "3", "1"],
            &["4", "2", "3", "1", "9"],
        ),
        (
            &["1", "2", "9", "3", "4"],
            &["2", "1", "4", "3"],
            &["2", "1", "9", "4", "3"],
        ),
        (
            &["1", "2", "7", "9", "8", "3", "4"],
            &["2", "1", "4", "3"],
            &["2", "1", "7", "9", "8", "4", "3"],
        ),
    ];
    for (live, wanted, result) in cases {
        let out = smp(
            &containers(live),
            json!({"spec": {"$setElementOrder/containers": order(wanted)}}),
        );
        assert_eq!(
            names(&out["spec"]["containers"]),
            *result,
            "live {live:?}, order {wanted:?}"
        );
    }
    // "$setElementOrder contains item that is not present in the list to be merged".
    let out = smp(
        &containers(&["hello2"]),
        json!({"spec": {"$setElementOrder/containers": order(&["hello", "doesntexist"]), "containers": [{"name": "hello"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["hello", "hello2"]);
}

#[test]
fn set_element_order_on_a_primitive_list() {
    // Upstream's "add an item in a list of primitives and preserve order".
    let live = json!({"metadata": {"finalizers": ["1", "4", "2"]}});
    let out = smp(
        &live,
        json!({"metadata": {"$setElementOrder/finalizers": ["3", "1", "2"], "finalizers": ["3"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["3", "1", "4", "2"]));
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let err = smp_err(
        &pod(),
        json!({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                        "containers": [{"name": "side"}, {"name": "app"}]}}),
    );
    assert_eq!(err.status_code(), 500);
    assert!(
        err.to_string().starts_with("The order in patch list:"),
        "{err}"
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let deployment =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = smp_kind(("apps", "Deployment"), &deployment, patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    let bad =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    let err = smp_kind(("apps", "Deployment"), &deployment, bad).unwrap_err();
    assert_eq!(
        err,
        PatchError::BadRequest("invalid patch format of retainKeys".into())
    );
    let not_a_list = json!({"spec": {"strategy": {"$retainKeys": "type"}}});
    assert!(
        smp_kind(("apps", "Deployment"), &deployment, not_a_list)
            .unwrap_err()
            .is_malformed()
    );
}

#[test]
fn pod_templates_of_workloads_merge_like_pods() {
    let deployment = json!({"spec": {"replicas": 1, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}]}}}});
    let patch = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}});
    for kind in [
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
    ] {
        let out = smp_kind(kind, &deployment, patch.clone()).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            names(&out["spec"]["template"]["spec"]["containers"]),
            ["app", "side"],
            "{kind:?}"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "app:2"
        );
    }
}

#[test]
fn service_ports_merge_by_port_and_node_conditions_by_type() {
    let service =
        json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
    let out = smp_kind(
        ("", "Service"),
        &service,
        json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}])
    );

    let node = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}});
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let out = smp_kind(("", "Node"), &node, patch).unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}])
    );
}

#[test]
fn directives_never_reach_the_stored_object() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "new", "env": [{"name": "X", "$patch": "delete"}],
                                        "$setElementOrder/env": [{"name": "Y"}], "$retainKeys": ["name"]}],
                        "$unknownDirective": 1}}),
    );
    let text = out.to_string();
    assert!(!text.contains('$'), "{text}");
    assert_eq!(
        out["spec"]["containers"][0],
        json!({"name": "new", "env": [{"name": "X"}]})
    );
    let replaced = smp(
        &pod(),
        json!({"$patch": "replace", "kind": "Pod", "spec": {"$retainKeys": []}}),
    );
    assert_eq!(replaced, json!({"kind": "Pod", "spec": {}}));
}

#[test]
fn strategic_errors_are_classified_like_upstream() {
    let err = smp_err(&pod(), json!({"spec": {"containers": [{"image": "x"}]}}));
    assert_eq!(
        err,
        PatchError::Internal("map: map[image:x] does not contain declared merge key: name".into())
    );
    assert_eq!(err.status_code(), 500);

    let err = smp_err(&pod(), json!({"metadata": {"labels": {"$patch": "merge"}}}));
    assert_eq!(
        err.to_string(),
        "unknown patch type: merge in map: map[$patch:merge]"
    );
    let err = smp_err(
        &pod(),
        json!({"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}),
    );
    assert_eq!(
        err.to_string(),
        "merging lists cannot yet be specified in the patch"
    );

    let lists = json!({"metadata": {"finalizers": [["a"]]}});
    let err = smp_err(&lists, json!({"metadata": {"finalizers": [["b"]]}}));
    assert_eq!(
        (err.status_code(), err.to_string()),
        (422, "lists of lists are not supported".to_string())
    );

    let err = smp_err(&pod(), json!({"metadata": {"finalizers": [1]}}));
    assert!(
        err.to_string()
            .starts_with("list element types are not identical"),
        "{err}"
    );

    let err = smp_err(
        &pod(),
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}),
    );
    assert_eq!(
        err,
        PatchError::BadRequest("invalid patch format of primitive list".into())
    );
    let err = smp_err(&pod(), json!({"spec": {"$setElementOrderX": []}}));
    assert_eq!(
        err,
        PatchError::BadRequest("invalid patch format of setElementOrder list".into())
    );
}

#[test]
fn strategic_patch_bodies() {
    let meta = PatchMeta::for_kind("", "v1", "Pod").unwrap();
    let run = |body: &[u8]| apply(PatchType::StrategicMergePatch, &pod(), body, Some(&meta));
    assert_eq!(
        run(b"null").unwrap(),
        pod(),
        "null decodes to an empty patch"
    );
    assert_eq!(run(b"{}").unwrap(), pod());
    assert_eq!(
        run(b"[1]").unwrap_err(),
        PatchError::BadRequest(
            "json: cannot unmarshal array into Go value of type map[string]interface {}".into()
        )
    );
    assert!(run(b"{not json").unwrap_err().is_malformed());
    assert_eq!(
        apply(PatchType::StrategicMergePatch, &pod(), b"{}", None).unwrap_err(),
        PatchError::UnsupportedPatchType(PatchType::StrategicMergePatch),
        "custom resources have no patch metadata"
    );
    assert_eq!(
        apply(PatchType::ApplyPatch, &pod(), b"{}", None)
            .unwrap_err()
            .status_code(),
        415
    );
}

#[test]
fn merge_patch_follows_rfc_7386_and_upstream_edges() {
    let out = apply(
        PatchType::MergePatch,
        &pod(),
        br#"{"metadata":{"labels":{"app":null,"new":"1"}}}"#,
        None,
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["labels"],
        json!({"tier": "front", "new": "1"})
    );
    assert_eq!(
        apply(PatchType::MergePatch, &pod(), b"", None).unwrap(),
        pod(),
        "an empty body changes nothing"
    );
    for bad in [&b"null"[..], b"\"x\"", b"3", b"{oops"] {
        let err = apply(PatchType::MergePatch, &pod(), bad, None).unwrap_err();
        assert_eq!(
            err,
            PatchError::BadRequest("Invalid JSON Patch".into()),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let err = apply(PatchType::MergePatch, &pod(), b"[1]", None).unwrap_err();
    assert_eq!(
        err.status_code(),
        422,
        "an array replaces the object, which then fails to decode"
    );
}

#[test]
fn json_patch_applies_and_classifies_failures() {
    let ops = br#"[{"op":"replace","path":"/metadata/name","value":"q"},
                   {"op":"add","path":"/metadata/labels/b","value":"2"},
                   {"op":"remove","path":"/spec/tolerations/0"},
                   {"op":"test","path":"/spec/containers/1/name","value":"side"}]"#;
    let out = apply(PatchType::JsonPatch, &pod(), ops, None).unwrap();
    assert_eq!(out["metadata"]["name"], "q");
    assert_eq!(out["metadata"]["labels"]["b"], "2");
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );

    let err = apply(PatchType::JsonPatch, &pod(), b"{not json", None).unwrap_err();
    assert_eq!(err.status_code(), 400);
    let err = apply(PatchType::JsonPatch, &pod(), br#"{"op":"add"}"#, None).unwrap_err();
    assert_eq!(err.status_code(), 400, "a JSON patch is a list");
    let failing = br#"[{"op":"test","path":"/metadata/name","value":"other"}]"#;
    assert_eq!(
        apply(PatchType::JsonPatch, &pod(), failing, None)
            .unwrap_err()
            .status_code(),
        422
    );
    let missing = br#"[{"op":"replace","path":"/metadata/nope/x","value":1}]"#;
    assert_eq!(
        apply(PatchType::JsonPatch, &pod(), missing, None)
            .unwrap_err()
            .status_code(),
        422
    );
    let not_object = br#"[{"op":"replace","path":"","value":5}]"#;
    assert_eq!(
        apply(PatchType::JsonPatch, &pod(), not_object, None)
            .unwrap_err()
            .status_code(),
        422
    );

    let many: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "Pod"}))
        .collect();
    let err = apply(
        PatchType::JsonPatch,
        &pod(),
        Value::from(many).to_string().as_bytes(),
        None,
    )
    .unwrap_err();
    assert_eq!(err, PatchError::TooManyOperations { got: 10_001 });
    assert_eq!(
        err.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    assert_eq!(err.status_code(), 413);
}

#[test]
fn content_types() {
    for patch_type in [
        PatchType::JsonPatch,
        PatchType::MergePatch,
        PatchType::StrategicMergePatch,
        PatchType::ApplyPatch,
    ] {
        assert_eq!(
            PatchType::from_content_type(patch_type.content_type()),
            Some(patch_type)
        );
    }
    assert_eq!(
        PatchType::from_content_type("Application/Merge-Patch+JSON; charset=utf-8"),
        Some(PatchType::MergePatch)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+cbor"),
        Some(PatchType::ApplyPatch)
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    assert_eq!(PatchType::from_content_type(""), None);
}
