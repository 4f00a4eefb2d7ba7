//! Any scenario file or object template, rendered over kube-burner's
//! template data: parsing and rendering must end in text or an error,
//! never a panic or a hang.
#![no_main]

use gotemplate::{MissingKey, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse("fuzz", text) else {
        return;
    };
    let values = json!({
        "Iteration": 7, "Replica": 2, "JobName": "job", "UUID": "u", "RunID": "r",
        "list": [1, "two", 3.5, null, {"k": "v"}], "map": {"a": 1, "b": [true]},
    });
    for missing in [MissingKey::Error, MissingKey::Zero] {
        let _ = template.render(&values, missing);
    }
});
