//! OpenAPI v2 and v3 documents for the resources the kstress API server serves.
