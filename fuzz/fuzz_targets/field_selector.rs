//! Field selectors arrive in `?fieldSelector=` from any client: parsing
//! and unescaping must never panic, and a parsed selector must print in a
//! form that parses back to the same requirements. Their order may differ:
//! as upstream, terms are sorted as written (`==` before it prints as `=`),
//! and a conjunction does not depend on it.
#![no_main]

use apimachinery::fields::FieldSelector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(selector) = FieldSelector::parse(input) else {
        return;
    };
    let printed = selector.to_string();
    let reparsed = FieldSelector::parse(&printed)
        .unwrap_or_else(|err| panic!("{printed:?} (from {input:?}) does not parse: {err}"));
    assert_eq!(
        requirements(&reparsed),
        requirements(&selector),
        "{input:?} printed as {printed:?}"
    );
});

fn requirements(selector: &FieldSelector) -> Vec<String> {
    let mut terms: Vec<String> = selector
        .requirements()
        .iter()
        .map(ToString::to_string)
        .collect();
    terms.sort();
    terms
}
