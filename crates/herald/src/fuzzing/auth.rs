//! Targets `channel_auth` (subscription and sign-in signatures, PROTOCOL.md 6.3, 8.2) and
//! `api_auth` (HTTP API request signatures over query string and body, 10.2, then the
//! publish-body validation of 10.3 / 10.4 that follows a successful check).
//!
//! Invariants: a check accepts an attacker-chosen `auth` only if it is exactly the HMAC an
//! independent computation expects; a token signed correctly for the fuzzed inputs is always
//! accepted, and the same token is refused once one hex digit, the secret, the key or the
//! signed text differs. For the HTTP API: a request the fuzzer did not sign passes only if its
//! signature is the expected one over the canonical string; a request signed the way the SDKs
//! sign it passes, and fails with the right error once its body or method changes.

use herald_protocol::api_auth::{string_to_sign, verify_api_request, ApiAuthError, ApiRequest, QueryParams};
use herald_protocol::auth::{
    authorize_subscription, hmac_sha256_hex, md5_hex, verify_user_auth, ChannelAuthError, UserAuthError,
};
use herald_protocol::channel::ChannelKind;

use super::input::Input;

const KEY: &str = "278d425bdf160c739803";
const SECRET: &str = "7ad3773142a6692b25b8";
const APP_ID: &str = "3";
/// The app, the server clock and the timestamp tolerance of the docs/PROTOCOL.md 10.9 vectors.
const NOW: u64 = 1_700_000_000;
const TOLERANCE: u64 = 600;

fn lookup(key: &str) -> Option<Vec<u8>> {
    (key == KEY).then(|| SECRET.as_bytes().to_vec())
}

/// One hex digit changed (the signature stays well-formed, only wrong).
fn flip(sig: &str, at: usize) -> String {
    let mut out = sig.to_owned();
    let i = at % sig.len().max(1);
    if let Some(c) = sig[i..].chars().next() {
        let other = if c == '0' { "1" } else { "0" };
        out.replace_range(i..i + c.len_utf8(), other);
    }
    out
}

/// Runs one input: flags, socket id, channel, channel_data, a raw `auth` token, user_data.
pub fn channel_auth(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let signed_in = flags & 1 != 0;
    let socket_id = input.field();
    let channel = input.field();
    let channel_data = Some(input.field()).filter(|_| flags & 2 != 0);
    let raw_auth = input.field();
    let user_data = input.field();
    let kind = ChannelKind::of(&channel);
    let cd = channel_data.as_deref();
    let sub = |auth: &str| authorize_subscription(kind, &socket_id, &channel, Some(auth), cd, signed_in, lookup);

    // The strings a valid token may sign (6.3), restated.
    let base = format!("{socket_id}:{channel}");
    let candidates: Vec<String> = match (kind.is_presence(), cd) {
        (true, Some(cd)) => vec![format!("{base}:{cd}")],
        (true, None) if signed_in => vec![base.clone()],
        (true, None) => vec![],
        (false, Some(cd)) => vec![base.clone(), format!("{base}:{cd}")],
        (false, None) => vec![base.clone()],
    };
    let expected = |sig: &str| candidates.iter().any(|c| hmac_sha256_hex(SECRET.as_bytes(), c.as_bytes()) == sig);

    // An arbitrary token.
    let result = sub(&raw_auth);
    if !kind.requires_signature() {
        assert_eq!(result, Ok(()));
    } else if result.is_ok() {
        let (key, sig) = raw_auth.split_once(':').expect("accepted auth has a key");
        assert!(key == KEY && expected(sig), "accepted {raw_auth:?} for {channel:?} / {cd:?}");
    } else if let Err(e) = &result {
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(
        authorize_subscription(kind, &socket_id, &channel, None, cd, signed_in, lookup).is_ok(),
        !kind.requires_signature()
    );

    // Correctly signed tokens, and each one-part change of them.
    if kind.requires_signature() {
        for text in &candidates {
            let sig = hmac_sha256_hex(SECRET.as_bytes(), text.as_bytes());
            assert_eq!(sub(&format!("{KEY}:{sig}")), Ok(()), "valid token refused for {text:?}");
            let wrong = flip(&sig, usize::from(flags));
            assert!(matches!(sub(&format!("{KEY}:{wrong}")), Err(ChannelAuthError::InvalidSignature { .. })));
            let other_secret = hmac_sha256_hex(b"another-secret", text.as_bytes());
            assert!(sub(&format!("{KEY}:{other_secret}")).is_err());
            assert!(matches!(sub(&format!("other-key:{sig}")), Err(ChannelAuthError::InvalidKey(_))));
        }
        if candidates.is_empty() {
            assert!(matches!(sub(&format!("{KEY}:00")), Err(ChannelAuthError::ChannelDataRequired(_))));
        }
    }

    // Sign-in (8.2) over "{socket_id}::user::{user_data}".
    let text = format!("{socket_id}::user::{user_data}");
    let sig = hmac_sha256_hex(SECRET.as_bytes(), text.as_bytes());
    let signin = |auth: &str| verify_user_auth(&socket_id, &user_data, auth, lookup);
    match signin(&raw_auth) {
        Ok(()) => assert_eq!(raw_auth, format!("{KEY}:{sig}"), "sign-in accepted a foreign token"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    assert_eq!(signin(&format!("{KEY}:{sig}")), Ok(()));
    assert_eq!(signin(&format!("{KEY}:{}", flip(&sig, usize::from(flags)))), Err(UserAuthError::InvalidSignature));
    assert!(matches!(signin(&format!("x{KEY}:{sig}")), Err(UserAuthError::InvalidKey(_))));
}

/// The auth parameters an SDK adds; fuzzed queries that set any of them are not re-signed.
const AUTH_PARAMS: [&str; 5] = ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"];

/// Runs one input: flags, method, path, raw query string, then the body (the rest).
pub fn api_auth(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let method = input.field();
    let path = input.field();
    let query = input.field();
    let body = input.rest();
    let app_id = (flags & 1 == 0).then_some(APP_ID);
    let lookup = |key: &str| (key == KEY).then_some((APP_ID, SECRET.as_bytes()));
    let verify = |method: &str, query: &str, body: &[u8]| {
        let req = ApiRequest { method, path: &path, raw_query: query, body };
        verify_api_request(&req, app_id, NOW, TOLERANCE, lookup)
    };

    let params = QueryParams::parse(&query);
    for key in params.0.keys() {
        assert_eq!(key, &key.to_ascii_lowercase(), "query keys are stored lower-cased");
    }

    // The request as the fuzzer made it.
    match verify(&method, &query, body) {
        Ok(verified) => {
            let p = &verified.params;
            assert_eq!(p.get("auth_key"), Some(KEY));
            assert_eq!(p.get("auth_version"), Some("1.0"));
            let ts: u64 = p.get("auth_timestamp").and_then(|t| t.parse().ok()).expect("a valid timestamp");
            assert!(ts.abs_diff(NOW) <= TOLERANCE);
            match p.get("body_md5") {
                Some(md5) => assert_eq!(md5, md5_hex(body)),
                None => assert!(body.is_empty()),
            }
            let sig = p.get("auth_signature").expect("signed");
            let decoded = percent_encoding::percent_decode(path.as_bytes()).decode_utf8_lossy().into_owned();
            let ok = [path.as_str(), decoded.as_str()]
                .iter()
                .any(|path| hmac_sha256_hex(SECRET.as_bytes(), string_to_sign(&method, path, p).as_bytes()) == sig);
            assert!(ok, "accepted a request whose signature is not the expected one");
            crate::http::fuzz::trigger_body(body, flags & 2 != 0);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    // The same request signed the way the SDKs sign it.
    if AUTH_PARAMS.iter().any(|k| params.get(k).is_some()) {
        return;
    }
    let md5 = md5_hex(body);
    let sep = if query.is_empty() { "" } else { "&" };
    let unsigned = format!("{query}{sep}auth_key={KEY}&auth_timestamp={NOW}&auth_version=1.0&body_md5={md5}");
    let sig =
        hmac_sha256_hex(SECRET.as_bytes(), string_to_sign(&method, &path, &QueryParams::parse(&unsigned)).as_bytes());
    let signed = format!("{unsigned}&auth_signature={sig}");
    let verified = verify(&method, &signed, body).expect("a correctly signed request is accepted");
    assert_eq!(verified.auth_key, KEY);
    let mut other_body = body.to_vec();
    other_body.push(b'x');
    assert_eq!(verify(&method, &signed, &other_body).err(), Some(ApiAuthError::BodyMd5Mismatch));
    let other_method = if method.eq_ignore_ascii_case("GET") { "POST" } else { "GET" };
    assert!(matches!(verify(other_method, &signed, body), Err(ApiAuthError::InvalidSignature { .. })));
    crate::http::fuzz::trigger_body(body, flags & 2 != 0);
}
