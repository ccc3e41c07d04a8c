//! Small JSON helpers shared by the parsers and encoders.
//!
//! Owns the two operations the protocol needs beyond plain `serde_json`: splitting an object
//! into its raw (unparsed, order- and escape-preserving) field texts, and compacting a raw JSON
//! value without reordering keys, so client-supplied JSON is relayed verbatim (5.5, 7.2).
//! All string escaping goes through `serde_json`.

use serde_json::value::RawValue;
use std::collections::HashMap;

/// Fields of a JSON object, each as its raw JSON text. Errors if `text` is not an object.
/// Duplicate keys: the last one wins.
pub(crate) fn object_fields(text: &str) -> Result<HashMap<String, &RawValue>, serde_json::Error> {
    serde_json::from_str(text)
}

/// The raw JSON text of a value, trimmed of surrounding whitespace.
pub(crate) fn raw_text(raw: &RawValue) -> &str {
    raw.get().trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// True when the raw value is JSON `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw_text(raw) == "null"
}

/// True when the raw value is a JSON string.
pub(crate) fn is_string(raw: &RawValue) -> bool {
    raw_text(raw).starts_with('"')
}

/// True when the raw value is a JSON object.
pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw_text(raw).starts_with('{')
}

/// Decodes a raw value that must be a JSON string.
pub(crate) fn as_string(raw: &RawValue) -> Option<String> {
    if !is_string(raw) {
        return None;
    }
    serde_json::from_str::<String>(raw.get()).ok()
}

/// Encodes `s` as a JSON string literal (with quotes), escaped by `serde_json`.
pub(crate) fn quote(s: &str) -> String {
    // Serializing a `str` cannot fail; the fallback only exists to avoid an unwrap.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Appends `s` as a JSON string literal to `out`.
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push_str(&quote(s));
}

/// Removes insignificant whitespace from already-valid JSON text without touching string
/// contents, key order, escapes or number spellings.
pub(crate) fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_key_order_and_string_whitespace() {
        assert_eq!(compact("{ \"b\" : 1 ,\n \"a\" : \"x \\\" y\" }"), "{\"b\":1,\"a\":\"x \\\" y\"}");
    }

    #[test]
    fn compact_keeps_escapes_verbatim() {
        assert_eq!(compact("[\"\\/\", \"\\u00e9\"]"), "[\"\\/\",\"\\u00e9\"]");
    }

    #[test]
    fn object_fields_rejects_non_objects() {
        assert!(object_fields("[1,2]").is_err());
        assert!(object_fields("\"x\"").is_err());
        assert!(object_fields("{").is_err());
        assert!(object_fields("{\"a\":1}").is_ok());
    }

    #[test]
    fn quote_escapes_control_and_quote_characters() {
        assert_eq!(quote("a\"b\n\u{1}"), "\"a\\\"b\\n\\u0001\"");
    }
}
