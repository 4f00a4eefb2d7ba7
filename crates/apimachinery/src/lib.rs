//! Kubernetes API machinery logic: selectors, patches, name validation, continue tokens.
