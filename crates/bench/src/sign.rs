//! Pusher signatures the load generator needs: private-channel authorization
//! (`key:HMAC-SHA256(secret, "socket_id:channel")`, PROTOCOL.md 6) and the signed query string of
//! the HTTP API (`auth_key`, `auth_timestamp`, `auth_version`, `body_md5`, `auth_signature`,
//! PROTOCOL.md 10.2).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

fn hmac_hex(secret: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `auth` field of a `pusher:subscribe` to a private channel.
pub(crate) fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str) -> String {
    format!("{key}:{}", hmac_hex(secret, &format!("{socket_id}:{channel}")))
}

/// The `auth` field of a `pusher:subscribe` to a presence channel with `channel_data`
/// (`key:HMAC-SHA256(secret, "socket_id:channel:channel_data")`, PROTOCOL.md 6).
pub(crate) fn presence_auth(key: &str, secret: &str, socket_id: &str, channel: &str, channel_data: &str) -> String {
    format!("{key}:{}", hmac_hex(secret, &format!("{socket_id}:{channel}:{channel_data}")))
}

/// The `X-Pusher-Signature` of a webhook request: hex HMAC-SHA256(secret, body).
pub(crate) fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The full query string (signature included) for `method path` with `body`.
pub(crate) fn api_query(key: &str, secret: &str, method: &str, path: &str, body: &[u8], timestamp: u64) -> String {
    let md5 = hex::encode(Md5::digest(body));
    let query = format!("auth_key={key}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={md5}");
    let sig = hmac_hex(secret, &format!("{method}\n{path}\n{query}"));
    format!("{query}&auth_signature={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_worked_example() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let q = api_query("278d425bdf160c739803", "7ad3773142a6692b25b8", "POST", "/apps/3/events", body, 1353088179);
        assert!(q.ends_with("auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"));
    }
}
