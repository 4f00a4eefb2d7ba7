//! Continue tokens come back from clients as opaque strings: decoding must
//! never panic, never accept a start key that climbs out of the list's
//! prefix, and a token it accepts must encode back to one that decodes the
//! same.
#![no_main]

use apimachinery::continue_token::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(token) = decode(input) else {
        return;
    };
    assert_ne!(token.rv, 0, "{input:?}");
    assert!(
        !token.start.split('/').any(|s| s == ".." || s == "."),
        "{input:?} escapes its prefix: {:?}",
        token.start
    );
    let again = decode(&encode(token.rv, &token.start))
        .unwrap_or_else(|err| panic!("re-encoded {token:?} does not decode: {err}"));
    assert_eq!(again, token);
});
