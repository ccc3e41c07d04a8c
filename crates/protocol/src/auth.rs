//! HMAC helpers and WebSocket authorization checks (6.1–6.3, 8.2).
//!
//! Owns every signature computation and comparison in herald: channel subscription `auth`
//! tokens, user sign-in tokens, and the primitives reused by the HTTP API and webhooks.
//! Comparisons are constant time; strings to sign are built from the exact bytes received,
//! never from re-serialized JSON (Python/PHP/Node encode JSON differently).

use crate::channel::ChannelKind;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex HMAC-SHA256 (64 characters).
pub fn hmac_sha256_hex(secret: &[u8], message: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, message))
}

fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; fall back to an
    // all-zero digest rather than panicking.
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; 32],
    }
}

/// Constant-time comparison of two byte strings; false on length mismatch.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Verifies that `given_hex` is the lowercase hex HMAC-SHA256 of `message`. Constant time on
/// the hex bytes; false on length mismatch.
pub fn verify_hex_signature(secret: &[u8], message: &[u8], given_hex: &str) -> bool {
    let expected = hmac_sha256_hex(secret, message);
    ct_eq(expected.as_bytes(), given_hex.as_bytes())
}

/// Lowercase hex MD5 of `body` (`body_md5`, 10.2).
pub fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Subscription refusal reasons; `Display` is the exact hosted `pusher:error` message (5.9).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelAuthError {
    /// A private, presence or encrypted channel was subscribed without `auth`.
    #[error("Auth info required to subscribe to {0}")]
    Missing(String),
    /// The key before the `:` of `auth` is not the app's.
    #[error("Invalid key in subscription auth data: '{0}'")]
    InvalidKey(String),
    /// The signature does not match.
    #[error("Invalid signature: Expected HMAC SHA256 hex digest of {expected}, but got {got}")]
    InvalidSignature {
        /// The string the signature must cover.
        expected: String,
        /// The signature received.
        got: String,
    },
    /// A presence channel was subscribed without `channel_data` (and no signed-in user).
    #[error("channel_data required to subscribe to {0}")]
    ChannelDataRequired(String),
}

/// Section 6.3. `secret_for_key` returns the secret for an app key (the key part of `auth`),
/// None if not this app's key. For Public/PublicCache/ServerToUser kinds returns Ok(()) without
/// checking (callers handle server-to-user). `signed_in` = the connection is signed in
/// (presence without channel_data is then signed over "{sid}:{channel}").
pub fn authorize_subscription(
    kind: ChannelKind,
    socket_id: &str,
    channel: &str,
    auth: Option<&str>,
    channel_data: Option<&str>,
    signed_in: bool,
    secret_for_key: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<(), ChannelAuthError> {
    if !kind.requires_signature() {
        return Ok(());
    }
    let auth = match auth {
        Some(a) if !a.is_empty() => a,
        _ => return Err(ChannelAuthError::Missing(channel.to_owned())),
    };
    let (key, sig) = auth.split_once(':').ok_or_else(|| ChannelAuthError::InvalidKey(auth.to_owned()))?;
    let secret = secret_for_key(key).ok_or_else(|| ChannelAuthError::InvalidKey(auth.to_owned()))?;

    let base = format!("{socket_id}:{channel}");
    let mut candidates = Vec::with_capacity(2);
    if kind.is_presence() {
        match channel_data {
            Some(cd) => candidates.push(format!("{base}:{cd}")),
            None if signed_in => candidates.push(base),
            None => return Err(ChannelAuthError::ChannelDataRequired(channel.to_owned())),
        }
    } else {
        let with_data = channel_data.map(|cd| format!("{base}:{cd}"));
        candidates.push(base);
        candidates.extend(with_data);
    }

    // Evaluate every candidate (no short-circuit) so timing does not reveal which one matched.
    let mut ok = false;
    for c in &candidates {
        ok |= verify_hex_signature(&secret, c.as_bytes(), sig);
    }
    if ok {
        return Ok(());
    }
    Err(ChannelAuthError::InvalidSignature {
        expected: candidates.into_iter().next().unwrap_or_default(),
        got: sig.to_owned(),
    })
}

/// Sign-in refusal reasons (8.2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserAuthError {
    /// The key before the `:` of `auth` is not the app's.
    #[error("Invalid key in signin auth data: '{0}'")]
    InvalidKey(String),
    /// The signature over `socket_id::user:user_data` does not match.
    #[error("Invalid signature for user authentication")]
    InvalidSignature,
}

/// Section 8.2: verifies `auth` over "{socket_id}::user::{user_data}".
pub fn verify_user_auth(
    socket_id: &str,
    user_data: &str,
    auth: &str,
    secret_for_key: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<(), UserAuthError> {
    let (key, sig) = auth.split_once(':').ok_or_else(|| UserAuthError::InvalidKey(auth.to_owned()))?;
    let secret = secret_for_key(key).ok_or_else(|| UserAuthError::InvalidKey(auth.to_owned()))?;
    let message = format!("{socket_id}::user::{user_data}");
    if verify_hex_signature(&secret, message.as_bytes(), sig) {
        Ok(())
    } else {
        Err(UserAuthError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const SID: &str = "123456.7890123";

    fn lookup(key: &str) -> Option<Vec<u8>> {
        (key == KEY).then(|| SECRET.as_bytes().to_vec())
    }

    fn h(secret: &str, msg: &str) -> String {
        hmac_sha256_hex(secret.as_bytes(), msg.as_bytes())
    }

    fn sub(channel: &str, auth: Option<&str>, cd: Option<&str>, signed_in: bool) -> Result<(), ChannelAuthError> {
        authorize_subscription(ChannelKind::of(channel), SID, channel, auth, cd, signed_in, lookup)
    }

    #[test]
    fn docs_vectors_p1_to_p3_compute() {
        assert_eq!(
            h(SECRET, "1234.1234:private-foobar"),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert_eq!(
            h(SECRET, r#"1234.1234::user::{"id":"12345"}"#),
            "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
        );
        assert_eq!(
            h(SECRET, r#"1234.1234:presence-foobar:{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#),
            "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
        );
    }

    #[test]
    fn docs_private_vector_p1_authorizes() {
        let auth = format!("{KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
        let r = authorize_subscription(
            ChannelKind::Private,
            "1234.1234",
            "private-foobar",
            Some(&auth),
            None,
            false,
            lookup,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn docs_presence_vector_p3_with_numeric_user_id_authorizes() {
        let cd = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let auth = format!("{KEY}:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80");
        let r = authorize_subscription(
            ChannelKind::Presence,
            "1234.1234",
            "presence-foobar",
            Some(&auth),
            Some(cd),
            false,
            lookup,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn node_sdk_vectors_n1_to_n5_compute() {
        assert_eq!(h("tofu", "123.456:test"), "efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c");
        assert_eq!(
            h("tofu", r#"123.456:test:{"foo":"bar"}"#),
            "f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4"
        );
        assert_eq!(
            h("tofu", r#"123.456::user::{"id":"45678"}"#),
            "f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd"
        );
        assert_eq!(
            h("tofu", r#"1.1::user::{"id":"ą§¶™€łü€ß£"}"#),
            "620494cee53d6c568b49598313194088afda37218f0d059af03c0c898ed61ff4"
        );
        assert_eq!(
            h("tofu", r#"123.456:private-encrypted-bla:"foo""#),
            "962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105"
        );
    }

    #[test]
    fn non_ascii_user_data_vector_n4_verifies() {
        let ud = r#"{"id":"ą§¶™€łü€ß£"}"#;
        let auth = "k:620494cee53d6c568b49598313194088afda37218f0d059af03c0c898ed61ff4";
        let r = verify_user_auth("1.1", ud, auth, |k| (k == "k").then(|| b"tofu".to_vec()));
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn private_channel_with_channel_data_vector_n2_accepts_either_form() {
        let lk = |k: &str| (k == "k").then(|| b"tofu".to_vec());
        let with_cd = "k:f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4";
        let plain = "k:efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c";
        let cd = Some(r#"{"foo":"bar"}"#);
        for auth in [with_cd, plain] {
            let r = authorize_subscription(ChannelKind::Private, "123.456", "test", Some(auth), cd, false, lk);
            assert_eq!(r, Ok(()), "{auth}");
        }
        // Node vector N5: encrypted channel signed with channel_data `"foo"`.
        let auth = "k:962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105";
        let r = authorize_subscription(
            ChannelKind::Encrypted,
            "123.456",
            "private-encrypted-bla",
            Some(auth),
            Some("\"foo\""),
            false,
            lk,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn webhook_vectors_k_and_n7_compute() {
        let k =
            r#"{"time_ms":1700000000123,"events":[{"name":"member_added","channel":"presence-room","user_id":"u-1"}]}"#;
        assert_eq!(h(SECRET, k), "b907f68ec32242ac28a02b9168e533e115897219429d305074f1e78ffecf69c8");
        let n7 = r#"{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}"#;
        assert_eq!(h("tofu", n7), "c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5");
    }

    /// Test-only base64 decoder for the shared-secret vectors (no base64 dependency).
    fn b64(s: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    fn shared_secret(channel: &str, master: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(channel.as_bytes());
        h.update(master);
        h.finalize().to_vec()
    }

    #[test]
    fn encrypted_shared_secret_vectors_n6_and_d_prime_compute() {
        let master = b64("zyrm8pvV2C9fJcBfhyXzvxbJVN/H7QLmbe0xJi1GhPU=");
        assert_eq!(
            shared_secret("private-encrypted-bla", &master),
            b64("nlr49ISQHz91yS3cy/yWmW8wFMNeTnNL5tNHnbPJcLQ=")
        );
        let master: Vec<u8> = (0u8..32).collect();
        assert_eq!(master, b64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
        let ss = shared_secret("private-encrypted-vault", &master);
        assert_eq!(hex::encode(&ss), "c29f0eae3b764b81f89fc7433fba5ad80f6b79db914d379d6da8959e3aa89ac7");
        assert_eq!(ss, b64("wp8Orjt2S4H4n8dDP7pa2A9reduRTTedbaiVnjqomsc="));
    }

    #[test]
    fn herald_vector_a_private_channel_authorizes() {
        let auth = format!("{KEY}:76387321915b200735ef6a513d808ea29f2f97e17e55e2c1ce4ee1945aeaa716");
        assert_eq!(sub("private-orders.42", Some(&auth), None, false), Ok(()));
    }

    #[test]
    fn herald_vector_b_presence_signature_verifies() {
        let cd = r#"{"user_id":"u-1","user_info":{"name":"Ada"}}"#;
        let auth = format!("{KEY}:1c77f93e546ef2a5f8be210fe1924061dd392b79a1a2e4d0acb301760f89ca8b");
        assert_eq!(sub("presence-room", Some(&auth), Some(cd), false), Ok(()));
    }

    #[test]
    fn presence_signature_with_python_spacing_verifies() {
        let cd = r#"{"user_id": "u-1", "user_info": {"name": "Ada"}}"#;
        let auth = format!("{KEY}:cca7ba8273a43401039e981872209e6a9342b3feacc7613c351ec7f317c64ca6");
        assert_eq!(sub("presence-room", Some(&auth), Some(cd), false), Ok(()));
        // ... and the compact signature does not verify the spaced data.
        let compact = format!("{KEY}:1c77f93e546ef2a5f8be210fe1924061dd392b79a1a2e4d0acb301760f89ca8b");
        assert!(matches!(
            sub("presence-room", Some(&compact), Some(cd), false),
            Err(ChannelAuthError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn herald_vector_d_encrypted_channel_authorizes() {
        let auth = format!("{KEY}:ac4da1a989c229ea43dc100f5c8010456ac2d1375c475ae689ab5f330ab8ee07");
        assert_eq!(sub("private-encrypted-vault", Some(&auth), None, false), Ok(()));
    }

    #[test]
    fn herald_vector_e_signin_verifies() {
        let ud = r#"{"id":"u-1","user_info":{"name":"Ada"},"watchlist":["u-2","u-3"]}"#;
        let auth = format!("{KEY}:33a665caccecc59c3efedb370fdd73e0c09ed631d57aef957f52046ab7fcd704");
        assert_eq!(verify_user_auth(SID, ud, &auth, lookup), Ok(()));
        assert_eq!(verify_user_auth("1.1", ud, &auth, lookup), Err(UserAuthError::InvalidSignature));
    }

    #[test]
    fn docs_signin_vector_p2_verifies() {
        let auth = format!("{KEY}:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba");
        assert_eq!(verify_user_auth("1234.1234", r#"{"id":"12345"}"#, &auth, lookup), Ok(()));
    }

    #[test]
    fn signin_with_unknown_key_or_no_colon_rejected() {
        assert_eq!(verify_user_auth(SID, "{}", "nokey", lookup), Err(UserAuthError::InvalidKey("nokey".into())));
        assert_eq!(
            verify_user_auth(SID, "{}", "other:abc", lookup),
            Err(UserAuthError::InvalidKey("other:abc".into()))
        );
    }

    #[test]
    fn herald_vector_f_signed_in_presence_without_channel_data_verifies() {
        let auth = format!("{KEY}:dcd12b3d9165462e6789eae761d226a40399b62ede84710010e9bfb895c1b5b6");
        assert_eq!(sub("presence-room", Some(&auth), None, true), Ok(()));
    }

    #[test]
    fn presence_without_channel_data_and_not_signed_in_requires_channel_data() {
        let auth = format!("{KEY}:dcd12b3d9165462e6789eae761d226a40399b62ede84710010e9bfb895c1b5b6");
        assert_eq!(
            sub("presence-room", Some(&auth), None, false),
            Err(ChannelAuthError::ChannelDataRequired("presence-room".into()))
        );
    }

    #[test]
    fn missing_or_empty_auth_rejected_with_hosted_message() {
        for auth in [None, Some("")] {
            let e = sub("private-x", auth, None, false).unwrap_err();
            assert_eq!(e.to_string(), "Auth info required to subscribe to private-x");
        }
    }

    #[test]
    fn wrong_key_or_missing_colon_rejected_with_hosted_message() {
        let e = sub("private-x", Some("abc"), None, false).unwrap_err();
        assert_eq!(e.to_string(), "Invalid key in subscription auth data: 'abc'");
        let e = sub("private-x", Some("wrong:abc"), None, false).unwrap_err();
        assert_eq!(e, ChannelAuthError::InvalidKey("wrong:abc".into()));
    }

    #[test]
    fn tampered_signature_rejected_with_hosted_message() {
        let auth = format!("{KEY}:06387321915b200735ef6a513d808ea29f2f97e17e55e2c1ce4ee1945aeaa716");
        let e = sub("private-orders.42", Some(&auth), None, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid signature: Expected HMAC SHA256 hex digest of 123456.7890123:private-orders.42, \
             but got 06387321915b200735ef6a513d808ea29f2f97e17e55e2c1ce4ee1945aeaa716"
        );
    }

    #[test]
    fn uppercase_or_truncated_hex_rejected() {
        let good = "76387321915b200735ef6a513d808ea29f2f97e17e55e2c1ce4ee1945aeaa716";
        let msg = format!("{SID}:private-orders.42");
        assert!(verify_hex_signature(SECRET.as_bytes(), msg.as_bytes(), good));
        assert!(!verify_hex_signature(SECRET.as_bytes(), msg.as_bytes(), &good.to_uppercase()));
        assert!(!verify_hex_signature(SECRET.as_bytes(), msg.as_bytes(), &good[..63]));
        assert!(!verify_hex_signature(SECRET.as_bytes(), msg.as_bytes(), ""));
    }

    #[test]
    fn public_and_server_to_user_channels_skip_signature_checks() {
        assert_eq!(sub("my-channel", Some("garbage"), Some("x"), false), Ok(()));
        assert_eq!(sub("cache-x", None, None, false), Ok(()));
        assert_eq!(sub("#server-to-user-u-1", Some(""), None, false), Ok(()));
    }

    #[test]
    fn md5_of_empty_and_braces() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"{}"), "99914b932bd37a50b983c5e7c90ae93b");
    }
}
