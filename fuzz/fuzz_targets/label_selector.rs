//! Label selectors arrive in `?labelSelector=` from any client: parsing
//! must never panic, and whatever parses must print in a form that parses
//! back to the same selector (the server echoes selectors in messages and
//! the scale subresource).
#![no_main]

use apimachinery::labels::LabelSelector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(selector) = LabelSelector::parse(input) else {
        return;
    };
    let printed = selector.to_string();
    let reparsed = LabelSelector::parse(&printed)
        .unwrap_or_else(|err| panic!("{printed:?} (from {input:?}) does not parse: {err}"));
    assert_eq!(reparsed, selector, "{input:?} printed as {printed:?}");
});
