//! The logic of the Kubernetes API machinery that a server needs and that
//! has nothing to do with I/O: label and field selectors, patches, name
//! validation and list continue tokens — each with upstream's syntax and
//! error messages, because clients parse and show them.

pub mod continue_token;
pub mod fields;
pub mod labels;
pub mod patch;
pub mod validation;
