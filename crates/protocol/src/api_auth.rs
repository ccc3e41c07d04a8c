//! HTTP API request authentication (10.2).
//!
//! Owns the server side of the SDK request signature: form-decoding the query string, building
//! the canonical string to sign, and the ordered 401 checks (key, app, version, timestamp,
//! `body_md5`, signature). SDKs differ in how they escape query values (`,` vs `%2C`), whether
//! they send `body_md5` on GET (Python does, for the empty body) and how they escape paths, so
//! all of that tolerance is concentrated here.

use crate::auth::{ct_eq, md5_hex, verify_hex_signature};
use percent_encoding::percent_decode;
use std::collections::BTreeMap;

/// The parts of an HTTP request the signature covers. `path` excludes the query string and any
/// configured path prefix (10.1).
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    /// HTTP method, upper case (`GET`, `POST`).
    pub method: &'a str,
    /// Decoded path without the query string and without the configured path prefix.
    pub path: &'a str,
    /// The query string exactly as received (without the `?`).
    pub raw_query: &'a str,
    /// The request body (empty for GET).
    pub body: &'a [u8],
}

/// Decoded query parameters (form-decoding, keys lower-cased, repeated keys joined with ',' in
/// arrival order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryParams(pub BTreeMap<String, String>);

/// Form-decodes one query component: `+` → space, then percent-decoding (invalid escapes are
/// kept literally, invalid UTF-8 becomes U+FFFD).
fn form_decode(s: &str) -> String {
    let plus_decoded = s.replace('+', " ");
    percent_decode(plus_decoded.as_bytes()).decode_utf8_lossy().into_owned()
}

impl QueryParams {
    /// Parses a raw query string (without the leading `?`). Empty items are skipped; an item
    /// without `=` has an empty value.
    pub fn parse(raw_query: &str) -> QueryParams {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for item in raw_query.split('&').filter(|i| !i.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let key = form_decode(k).to_ascii_lowercase();
            let value = form_decode(v);
            match map.get_mut(&key) {
                Some(existing) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => {
                    map.insert(key, value);
                }
            }
        }
        QueryParams(map)
    }

    /// Value of a parameter (keys are stored lower-cased; lookup is ASCII case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.0.get(&key.to_ascii_lowercase()).map(String::as_str)
        } else {
            self.0.get(key).map(String::as_str)
        }
    }
}

/// string_to_sign = METHOD\npath\ncanonical(params without auth_signature)
pub fn string_to_sign(method: &str, path: &str, params: &QueryParams) -> String {
    let mut out = String::with_capacity(method.len() + path.len() + 160);
    out.push_str(&method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    let mut first = true;
    for (k, v) in params.0.iter().filter(|(k, _)| k.as_str() != "auth_signature") {
        if !first {
            out.push('&');
        }
        first = false;
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Every variant maps to HTTP 401; `Display` is the human message sent in the body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiAuthError {
    /// A required auth parameter (`auth_key`, `auth_timestamp`, ...) is absent.
    #[error("Missing parameter: {0}")]
    MissingParam(&'static str),
    /// No app has this key.
    #[error("Unknown auth_key")]
    UnknownKey,
    /// The key belongs to another app than the one in the path.
    #[error("auth_key does not belong to app {0}")]
    WrongApp(String),
    /// `auth_version` is not `1.0`.
    #[error("Unsupported auth_version {0}; expected 1.0")]
    BadVersion(String),
    /// `auth_timestamp` is not a whole number of seconds.
    #[error("Invalid auth_timestamp")]
    BadTimestamp,
    /// `auth_timestamp` is further than the tolerance from the server's clock.
    #[error("Timestamp expired: Given timestamp ({given}) not within {tolerance}s of server time ({now})")]
    TimestampExpired {
        /// The timestamp the request carried.
        given: String,
        /// The accepted distance from the server's clock, in seconds.
        tolerance: u64,
        /// The server's clock, in seconds since the epoch.
        now: String,
    },
    /// A request with a body carried no `body_md5`.
    #[error("body_md5 required for a request with a body")]
    MissingBodyMd5,
    /// `body_md5` is not the MD5 of the body received.
    #[error("body_md5 does not match the request body")]
    BodyMd5Mismatch,
    /// `auth_signature` does not match.
    #[error(
        "Invalid signature: you should have sent HmacSHA256Hex({expected:?}, your_secret_key), but you sent \"{got}\""
    )]
    InvalidSignature {
        /// The string the signature must cover (never the secret).
        expected: String,
        /// The signature received.
        got: String,
    },
}

/// A request that passed every 401 check.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    /// The decoded query parameters.
    pub params: QueryParams,
    /// The key that signed the request.
    pub auth_key: String,
}

/// `(year, month, day)` of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe as i64 + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC rendering of Unix seconds, e.g. `2013-09-29T08:46:33Z`.
pub fn rfc3339_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64; // ≤ 2.2e14, fits
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// `lookup(auth_key)` returns Some((app_id, secret)) for a known key. `expected_app_id` = None
/// for the python alias route (app taken from the key). Order: params present -> key known ->
/// app matches -> version -> timestamp -> body_md5 -> signature (path as received; on mismatch
/// retry once with the percent-decoded path). Constant-time compare.
pub fn verify_api_request<'k>(
    req: &ApiRequest<'_>,
    expected_app_id: Option<&str>,
    now_unix: u64,
    tolerance_secs: u64,
    lookup: impl Fn(&str) -> Option<(&'k str, &'k [u8])>,
) -> Result<VerifiedRequest, ApiAuthError> {
    let params = QueryParams::parse(req.raw_query);
    let require = |name: &'static str| params.get(name).ok_or(ApiAuthError::MissingParam(name));
    let auth_key = require("auth_key")?;
    let timestamp = require("auth_timestamp")?;
    let version = require("auth_version")?;
    let signature = require("auth_signature")?;

    let (app_id, secret) = lookup(auth_key).ok_or(ApiAuthError::UnknownKey)?;
    if let Some(expected) = expected_app_id {
        if app_id != expected {
            return Err(ApiAuthError::WrongApp(expected.to_owned()));
        }
    }
    if version != "1.0" {
        return Err(ApiAuthError::BadVersion(version.to_owned()));
    }

    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiAuthError::BadTimestamp);
    }
    let given = timestamp.parse::<u64>().map_err(|_| ApiAuthError::BadTimestamp)?;
    if now_unix.abs_diff(given) > tolerance_secs {
        return Err(ApiAuthError::TimestampExpired {
            given: rfc3339_utc(given),
            tolerance: tolerance_secs,
            now: rfc3339_utc(now_unix),
        });
    }

    // A body_md5 on an empty body is accepted iff it is the MD5 of the empty string,
    // d41d8cd98f00b204e9800998ecf8427e (pusher-http-python sends it on every GET).
    match params.get("body_md5") {
        None if !req.body.is_empty() => return Err(ApiAuthError::MissingBodyMd5),
        Some(given_md5) if !ct_eq(md5_hex(req.body).as_bytes(), given_md5.as_bytes()) => {
            return Err(ApiAuthError::BodyMd5Mismatch);
        }
        _ => {}
    }

    let expected = string_to_sign(req.method, req.path, &params);
    let mut ok = verify_hex_signature(secret, expected.as_bytes(), signature);
    if !ok {
        let decoded = percent_decode(req.path.as_bytes()).decode_utf8_lossy();
        if decoded != req.path {
            let retry = string_to_sign(req.method, &decoded, &params);
            ok = verify_hex_signature(secret, retry.as_bytes(), signature);
        }
    }
    if !ok {
        return Err(ApiAuthError::InvalidSignature { expected, got: signature.to_owned() });
    }

    let auth_key = auth_key.to_owned();
    Ok(VerifiedRequest { params, auth_key })
}

#[cfg(test)]
#[path = "api_auth_tests.rs"]
mod tests;
