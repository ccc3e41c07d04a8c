//! Pusher close codes and `pusher:error` codes (12.1).
//!
//! Centralised so every crate sends the same numbers; the client's reaction (reconnect, give
//! up, switch to TLS) depends entirely on these values. 43xx codes are error codes only and
//! must never be used to close a connection.

/// WebSocket close codes herald sends (12.1).
pub mod close {
    /// App only accepts TLS; pusher-js switches to `wss` and retries.
    pub const APP_ONLY_TLS: u16 = 4000;
    /// Unknown app key.
    pub const APP_NOT_FOUND: u16 = 4001;
    /// App disabled.
    pub const APP_DISABLED: u16 = 4003;
    /// App over its connection quota.
    pub const APP_OVER_QUOTA: u16 = 4004;
    /// Path is not `/app/{key}`.
    pub const PATH_NOT_FOUND: u16 = 4005;
    /// Unsupported `protocol` query parameter.
    pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
    /// Missing `protocol` query parameter (strict mode only).
    pub const NO_PROTOCOL: u16 = 4008;
    /// Connection unauthorized (terminate, authorized-connections timeout, origin).
    pub const UNAUTHORIZED: u16 = 4009;
    /// Server over capacity; client retries after 1 s.
    pub const OVER_CAPACITY: u16 = 4100;
    /// Generic "reconnect immediately" (graceful shutdown).
    pub const RECONNECT: u16 = 4200;
    /// Liveness probe was not answered.
    pub const PONG_NOT_RECEIVED: u16 = 4201;
    /// Inbound frame larger than the configured limit (RFC 6455).
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Codes only ever carried inside `pusher:error` frames, never as close codes (12.1).
pub mod error {
    /// Client event rate limit exceeded.
    pub const CLIENT_EVENT_RATE_LIMIT: u16 = 4301;
    /// Watchlist larger than the limit.
    pub const WATCHLIST_LIMIT: u16 = 4302;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_in_the_refused_range_and_distinct_from_close_codes() {
        assert!((4300..4400).contains(&error::CLIENT_EVENT_RATE_LIMIT));
        assert!((4300..4400).contains(&error::WATCHLIST_LIMIT));
        assert_eq!(close::UNAUTHORIZED, 4009);
        assert_eq!(close::MESSAGE_TOO_BIG, 1009);
    }
}
