//! Reading the figures of a `--json` summary.

/// The field `field` of `v`, a count of bytes.
pub fn bytes(v: &serde_json::Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("expected {field} in {v}"))
}
