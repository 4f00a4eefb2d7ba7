//! Request paths are the first thing the server reads from a client. The
//! router must never panic, and a path it routes to a resource must name
//! non-empty parts without `/`: as upstream, an encoded slash (`%2F`)
//! separates segments like a plain one, so no part can smuggle one into a
//! storage key.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The API server's router, compiled in on its own so that the fuzz build
/// does not pull in the server's network and storage stack. Only `route`
/// and the resource parts are used here, hence the allowance.
#[path = "../../crates/apiserver/src/path.rs"]
#[allow(dead_code)]
mod path;

fuzz_target!(|input: &str| {
    let Some(path::Route::Resource(resource)) = path::route(input) else {
        return;
    };
    let parts = [
        Some(&resource.version),
        Some(&resource.resource),
        resource.namespace.as_ref(),
        resource.name.as_ref(),
        resource.subresource.as_ref(),
    ];
    for part in parts.into_iter().flatten() {
        assert!(
            !part.is_empty() && !part.contains('/'),
            "{input:?} routed to {resource:?}"
        );
    }
});
