//! PATCH bodies come from any client. The first byte picks the patch type
//! and the kind whose strategic-merge metadata applies; the rest is split at
//! the first NUL into the stored object and the patch. Applying must never
//! panic, and a successful patch must yield an object.
#![no_main]

use apimachinery::patch::{PatchMeta, PatchType, apply};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let patch_type = match selector % 3 {
        0 => PatchType::JsonPatch,
        1 => PatchType::MergePatch,
        _ => PatchType::StrategicMergePatch,
    };
    let (original, patch) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (
            serde_json::from_slice(&rest[..at]).unwrap_or_else(|_| default_pod()),
            &rest[at + 1..],
        ),
        None => (default_pod(), rest),
    };
    let (group, kind) = KINDS[usize::from(selector / 3) % KINDS.len()];
    let meta = PatchMeta::for_kind(group, "v1", kind);
    if let Ok(patched) = apply(patch_type, &original, patch, meta.as_ref()) {
        assert!(
            patched.is_object() || !original.is_object(),
            "{patch_type:?} turned an object into {patched}"
        );
    }
});

/// Kinds with different strategic-merge metadata.
const KINDS: [(&str, &str); 5] = [
    ("", "Pod"),
    ("apps", "Deployment"),
    ("", "Node"),
    ("", "Service"),
    ("", "ConfigMap"),
];

fn default_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "finalizers": ["x"]},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "ports": [{"containerPort": 80}], "env": [{"name": "E", "value": "v"}]}
            ],
            "volumes": [{"name": "v", "emptyDir": {}}]
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    })
}
