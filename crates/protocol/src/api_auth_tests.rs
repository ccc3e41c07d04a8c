//! Tests for `api_auth`: every HTTP vector of PROTOCOL.md 6.5 (P4, N8), 10.2 (docs example) and
//! 10.9 (G, H raw and `%2C`, I, J, L), plus each 401 rejection in check order. Kept in a
//! separate file so `api_auth.rs` stays short.

use super::*;
use crate::auth::hmac_sha256_hex;

const KEY: &str = "278d425bdf160c739803";
const SECRET: &[u8] = b"7ad3773142a6692b25b8";
const TS: u64 = 1_700_000_000;

fn lookup(key: &str) -> Option<(&'static str, &'static [u8])> {
    match key {
        KEY => Some(("3", SECRET)),
        "other-key" => Some(("4", b"other-secret".as_slice())),
        _ => None,
    }
}

fn verify(method: &str, path: &str, raw_query: &str, body: &[u8], now: u64) -> Result<VerifiedRequest, ApiAuthError> {
    let req = ApiRequest { method, path, raw_query, body };
    verify_api_request(&req, Some("3"), now, 600, lookup)
}

/// Signs `params` (already canonical, no signature) over `path` and returns the full query.
fn signed_query(method: &str, path: &str, params: &str) -> String {
    let sts = string_to_sign(method, path, &QueryParams::parse(params));
    format!("{params}&auth_signature={}", hmac_sha256_hex(SECRET, sts.as_bytes()))
}

const DOCS_BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;

#[test]
fn docs_worked_example_p4_verifies() {
    assert_eq!(md5_hex(DOCS_BODY.as_bytes()), "ec365a775a4cd0599faeb73354201b6f");
    let q = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
    assert_eq!(
        string_to_sign("POST", "/apps/3/events", &QueryParams::parse(q)),
        "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
         &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
    );
    let v = verify("POST", "/apps/3/events", q, DOCS_BODY.as_bytes(), 1_353_088_179).unwrap();
    assert_eq!(v.auth_key, KEY);
    assert_eq!(v.params.get("auth_timestamp"), Some("1353088179"));
}

const G_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
    &filter_by_prefix=presence-&info=user_count\
    &auth_signature=5142c71a4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a";

#[test]
fn vector_g_list_presence_channels_verifies() {
    assert_eq!(
        string_to_sign("GET", "/apps/3/channels", &QueryParams::parse(G_QUERY)),
        "GET\n/apps/3/channels\nauth_key=278d425bdf160c739803&auth_timestamp=1700000000\
         &auth_version=1.0&filter_by_prefix=presence-&info=user_count"
    );
    let v = verify("GET", "/apps/3/channels", G_QUERY, b"", TS).unwrap();
    assert_eq!(v.params.get("filter_by_prefix"), Some("presence-"));
    assert_eq!(v.params.get("info"), Some("user_count"));
}

fn h_query(info: &str) -> String {
    format!(
        "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
         &body_md5=d41d8cd98f00b204e9800998ecf8427e&info={info}\
         &auth_signature=c510e9ddac97883185422c26f67b3d837134cddcdc1af8f6e93a6b6b6d1ea28c"
    )
}

#[test]
fn vector_h_raw_comma_info_value_verifies() {
    let q = h_query("user_count,subscription_count");
    assert_eq!(
        string_to_sign("GET", "/apps/3/channels/presence-room", &QueryParams::parse(&q)),
        "GET\n/apps/3/channels/presence-room\nauth_key=278d425bdf160c739803\
         &auth_timestamp=1700000000&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e\
         &info=user_count,subscription_count"
    );
    assert!(verify("GET", "/apps/3/channels/presence-room", &q, b"", TS).is_ok());
}

#[test]
fn percent_encoded_info_value_verifies() {
    let q = h_query("user_count%2Csubscription_count");
    let v = verify("GET", "/apps/3/channels/presence-room", &q, b"", TS).unwrap();
    assert_eq!(v.params.get("info"), Some("user_count,subscription_count"));
    let lower = h_query("user_count%2csubscription_count");
    assert!(verify("GET", "/apps/3/channels/presence-room", &lower, b"", TS).is_ok());
}

#[test]
fn body_md5_on_empty_get_accepted() {
    // Vector H carries body_md5 of the empty body on a GET (pusher-http-python).
    let q = h_query("user_count,subscription_count");
    assert!(verify("GET", "/apps/3/channels/presence-room", &q, b"", TS).is_ok());
}

#[test]
fn wrong_body_md5_on_empty_body_rejected() {
    let q = signed_query(
        "GET",
        "/apps/3/channels",
        "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
         &body_md5=99914b932bd37a50b983c5e7c90ae93b",
    );
    assert_eq!(verify("GET", "/apps/3/channels", &q, b"", TS).unwrap_err(), ApiAuthError::BodyMd5Mismatch);
}

const I_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
    &body_md5=99914b932bd37a50b983c5e7c90ae93b\
    &auth_signature=a7f8b5c21ca5d41dcf410b171a1e933f29c5a5a126a9dd1b89dcf225960767ac";

#[test]
fn vector_i_terminate_connections_verifies() {
    assert_eq!(md5_hex(b"{}"), "99914b932bd37a50b983c5e7c90ae93b");
    assert_eq!(
        string_to_sign("POST", "/apps/3/users/u-1/terminate_connections", &QueryParams::parse(I_QUERY)),
        "POST\n/apps/3/users/u-1/terminate_connections\nauth_key=278d425bdf160c739803\
         &auth_timestamp=1700000000&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b"
    );
    assert!(verify("POST", "/apps/3/users/u-1/terminate_connections", I_QUERY, b"{}", TS).is_ok());
}

#[test]
fn python_alias_route_takes_app_from_key() {
    let path = "/users/u-1/terminate_connections";
    let q = signed_query(
        "POST",
        path,
        "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
         &body_md5=99914b932bd37a50b983c5e7c90ae93b",
    );
    let req = ApiRequest { method: "POST", path, raw_query: &q, body: b"{}" };
    assert!(verify_api_request(&req, None, TS, 600, lookup).is_ok());
}

const J_BODY: &str = r#"{"batch":[{"channel":"orders","name":"created","data":"{\"id\":1}"},{"channel":"presence-room","name":"ping","data":"hi","info":"user_count"}]}"#;

#[test]
fn vector_j_batch_events_verifies() {
    assert_eq!(md5_hex(J_BODY.as_bytes()), "1baa3cd1988d12f026a986f931a35958");
    let q = "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
             &body_md5=1baa3cd1988d12f026a986f931a35958\
             &auth_signature=52d47b3061f669e4da2ad82eed9e4c3ee05bbdccf57c5bfb8310edee7f1f57b3";
    assert!(verify("POST", "/apps/3/batch_events", q, J_BODY.as_bytes(), TS).is_ok());
}

const L_BODY: &str = r##"{"name":"notice","data":"{\"text\":\"hi\"}","channels":["#server-to-user-u-1"]}"##;
const L_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
    &body_md5=a63bf28d239115bc6df4baecdf31ce65\
    &auth_signature=a83eb0672faa89f07583912e8076b92bea7a9771bd460e1e64ca144da28d5379";

#[test]
fn vector_l_send_to_user_verifies() {
    assert_eq!(md5_hex(L_BODY.as_bytes()), "a63bf28d239115bc6df4baecdf31ce65");
    assert!(verify("POST", "/apps/3/events", L_QUERY, L_BODY.as_bytes(), TS).is_ok());
}

#[test]
fn node_sdk_vector_n8_verifies() {
    let q = "auth_key=f00d&auth_timestamp=1234567890&auth_version=1.0\
             &body_md5=165d5e6d7ca8f73b3853ce45addf42fc\
             &auth_signature=a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b";
    let req = ApiRequest { method: "GET", path: "/event", raw_query: q, body: b"example body" };
    let lk = |k: &str| (k == "f00d").then_some(("1", b"tofu".as_slice()));
    assert!(verify_api_request(&req, None, 1_234_567_890, 600, lk).is_ok());
}

#[test]
fn timestamp_within_600_seconds_accepted() {
    assert!(verify("GET", "/apps/3/channels", G_QUERY, b"", TS + 600).is_ok());
    assert!(verify("GET", "/apps/3/channels", G_QUERY, b"", TS - 600).is_ok());
}

#[test]
fn stale_timestamp_601_seconds_either_way_rejected() {
    for now in [TS + 601, TS - 601] {
        assert!(matches!(
            verify("GET", "/apps/3/channels", G_QUERY, b"", now),
            Err(ApiAuthError::TimestampExpired { tolerance: 600, .. })
        ));
    }
}

#[test]
fn timestamp_expired_message_matches_hosted_format() {
    let e = ApiAuthError::TimestampExpired {
        given: rfc3339_utc(1_380_444_393),
        tolerance: 600,
        now: rfc3339_utc(1_380_443_792),
    };
    assert_eq!(
        e.to_string(),
        "Timestamp expired: Given timestamp (2013-09-29T08:46:33Z) not within 600s of server time \
         (2013-09-29T08:36:32Z)"
    );
}

#[test]
fn rfc3339_handles_epoch_leap_day_and_extremes() {
    assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339_utc(TS), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
    assert!(rfc3339_utc(u64::MAX).ends_with('Z'));
}

#[test]
fn non_numeric_or_huge_timestamp_rejected() {
    for ts in ["abc", "", "-5", "+1700000000", "1700000000.0", "99999999999999999999999"] {
        let q = format!("auth_key=278d425bdf160c739803&auth_timestamp={ts}&auth_version=1.0&auth_signature=00");
        assert_eq!(verify("GET", "/apps/3/channels", &q, b"", TS).unwrap_err(), ApiAuthError::BadTimestamp, "{ts}");
    }
}

#[test]
fn missing_body_md5_with_body_rejected() {
    let q = signed_query(
        "POST",
        "/apps/3/events",
        "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0",
    );
    assert_eq!(verify("POST", "/apps/3/events", &q, L_BODY.as_bytes(), TS).unwrap_err(), ApiAuthError::MissingBodyMd5);
}

#[test]
fn wrong_body_md5_rejected() {
    assert_eq!(
        verify("POST", "/apps/3/events", L_QUERY, b"{\"name\":\"x\"}", TS).unwrap_err(),
        ApiAuthError::BodyMd5Mismatch
    );
}

#[test]
fn unknown_key_rejected() {
    let q = G_QUERY.replace(KEY, "nope");
    assert_eq!(verify("GET", "/apps/3/channels", &q, b"", TS).unwrap_err(), ApiAuthError::UnknownKey);
}

#[test]
fn key_of_another_app_rejected() {
    let q = G_QUERY.replace(KEY, "other-key");
    let e = verify("GET", "/apps/3/channels", &q, b"", TS).unwrap_err();
    assert_eq!(e, ApiAuthError::WrongApp("3".into()));
    assert_eq!(e.to_string(), "auth_key does not belong to app 3");
}

#[test]
fn bad_auth_version_rejected() {
    let q = G_QUERY.replace("auth_version=1.0", "auth_version=2.0");
    assert_eq!(verify("GET", "/apps/3/channels", &q, b"", TS).unwrap_err(), ApiAuthError::BadVersion("2.0".into()));
}

#[test]
fn missing_params_rejected_in_order() {
    let cases = [
        ("auth_timestamp=1&auth_version=1.0&auth_signature=x", "auth_key"),
        ("auth_key=k&auth_version=1.0&auth_signature=x", "auth_timestamp"),
        ("auth_key=k&auth_timestamp=1&auth_signature=x", "auth_version"),
        ("auth_key=k&auth_timestamp=1&auth_version=1.0", "auth_signature"),
    ];
    for (q, missing) in cases {
        assert_eq!(verify("GET", "/apps/3/channels", q, b"", TS).unwrap_err(), ApiAuthError::MissingParam(missing));
    }
}

#[test]
fn tampered_signature_rejected_with_hosted_style_message() {
    let q = G_QUERY.replace("5142c71a", "5142c71b");
    let e = verify("GET", "/apps/3/channels", &q, b"", TS).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid signature: you should have sent HmacSHA256Hex(\"GET\\n/apps/3/channels\\n\
         auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
         &filter_by_prefix=presence-&info=user_count\", your_secret_key), but you sent \
         \"5142c71b4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a\""
    );
}

#[test]
fn tampered_query_value_rejected() {
    let q = G_QUERY.replace("info=user_count", "info=subscription_count");
    assert!(matches!(verify("GET", "/apps/3/channels", &q, b"", TS), Err(ApiAuthError::InvalidSignature { .. })));
}

#[test]
fn percent_encoded_path_retried_decoded() {
    let q = h_query("user_count,subscription_count");
    assert!(verify("GET", "/apps/3/channels/presence%2Droom", &q, b"", TS).is_ok());
}

#[test]
fn path_signed_as_received_verifies_first_try() {
    let path = "/apps/3/channels/private-a%40b";
    let q = signed_query("GET", path, "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0");
    assert!(verify("GET", path, &q, b"", TS).is_ok());
    assert!(verify("GET", "/apps/3/channels/private-a@b", &q, b"", TS).is_err());
}

#[test]
fn lowercase_method_is_upper_cased() {
    assert!(verify("get", "/apps/3/channels", G_QUERY, b"", TS).is_ok());
}

#[test]
fn repeated_keys_joined_with_comma_in_arrival_order() {
    let p = QueryParams::parse("info=b&x=1&info=a&INFO=c");
    assert_eq!(p.get("info"), Some("b,a,c"));
    let params = "auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0";
    let sts = format!("GET\n/apps/3/channels\n{params}&info=user_count,subscription_count");
    let sig = hmac_sha256_hex(SECRET, sts.as_bytes());
    let q = format!("{params}&info=user_count&info=subscription_count&auth_signature={sig}");
    assert!(verify("GET", "/apps/3/channels", &q, b"", TS).is_ok());
}

#[test]
fn form_decoding_plus_is_space_and_percent_2b_is_plus() {
    let p = QueryParams::parse("a=x+y&b=x%2By&c=%zz&d&&e=");
    assert_eq!(p.get("a"), Some("x y"));
    assert_eq!(p.get("b"), Some("x+y"));
    assert_eq!(p.get("c"), Some("%zz"));
    assert_eq!(p.get("d"), Some(""));
    assert_eq!(p.get("e"), Some(""));
    assert_eq!(p.0.len(), 5);
}

#[test]
fn keys_lower_cased_and_lookup_case_insensitive() {
    let q = G_QUERY.replace("auth_key", "Auth_Key").replace("info=", "INFO=");
    let v = verify("GET", "/apps/3/channels", &q, b"", TS).unwrap();
    assert_eq!(v.params.get("Info"), Some("user_count"));
}

#[test]
fn canonical_string_sorts_bytewise_and_keeps_unknown_params() {
    let p = QueryParams::parse("b=2&a=1&auth_signature=zz&_x=3&Z=4");
    assert_eq!(string_to_sign("post", "/p", &p), "POST\n/p\n_x=3&a=1&b=2&z=4");
}

#[test]
fn hostile_query_strings_do_not_panic() {
    for q in ["%", "%e9%", "=&=&==", "\u{e9}=\u{e9}", "auth_key=%FF%FE", "&&&&", "a=%00"] {
        let _ = QueryParams::parse(q);
        let _ = verify("GET", "/apps/3/%", q, b"\xff", TS);
    }
}
