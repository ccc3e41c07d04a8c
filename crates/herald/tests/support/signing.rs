//! Pusher signatures computed independently of herald's own code: HMAC-SHA256 hex, body MD5,
//! and the channel / user `auth` strings signed with the test app's secret.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::{KEY, SECRET};

pub(crate) fn hmac_hex(secret: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `auth` for a private/presence subscription, signed with the test app's secret.
pub(crate) fn channel_auth(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let msg = match channel_data {
        Some(cd) => format!("{socket_id}:{channel}:{cd}"),
        None => format!("{socket_id}:{channel}"),
    };
    format!("{KEY}:{}", hmac_hex(SECRET, &msg))
}

pub(crate) fn user_auth(socket_id: &str, user_data: &str) -> String {
    format!("{KEY}:{}", hmac_hex(SECRET, &format!("{socket_id}::user::{user_data}")))
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub(crate) fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}
