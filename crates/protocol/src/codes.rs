//! Pusher close codes and `pusher:error` codes (12.1).
//!
//! Centralised so every crate sends the same numbers; the client's reaction (reconnect, give
//! up, switch to TLS) depends entirely on these values. Two types keep the two kinds apart:
//! a [`CloseCode`] ends a connection and can never be a 43xx code (pusher-js treats 4300–4399
//! as "reconnect after a pause", which no herald close means); an [`ErrorCode`] is only carried
//! inside a `pusher:error` frame, the connection staying open. Neither can be built from an
//! arbitrary number: the associated constants are the codes herald sends.

use std::fmt;

/// A WebSocket close code herald sends (12.1). Never in 4300–4399.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(u16);

impl CloseCode {
    /// App only accepts TLS; pusher-js switches to `wss` and retries.
    pub const APP_ONLY_TLS: CloseCode = CloseCode(4000);
    /// Unknown app key.
    pub const APP_NOT_FOUND: CloseCode = CloseCode(4001);
    /// App disabled.
    pub const APP_DISABLED: CloseCode = CloseCode(4003);
    /// App over its connection quota.
    pub const APP_OVER_QUOTA: CloseCode = CloseCode(4004);
    /// Unsupported `protocol` query parameter.
    pub const UNSUPPORTED_PROTOCOL: CloseCode = CloseCode(4007);
    /// Missing `protocol` query parameter (strict mode only).
    pub const NO_PROTOCOL: CloseCode = CloseCode(4008);
    /// Connection unauthorized (terminate, authorized-connections timeout, origin).
    pub const UNAUTHORIZED: CloseCode = CloseCode(4009);
    /// Server over capacity; client retries after 1 s.
    pub const OVER_CAPACITY: CloseCode = CloseCode(4100);
    /// Generic "reconnect immediately" (graceful shutdown).
    pub const RECONNECT: CloseCode = CloseCode(4200);
    /// Liveness probe was not answered.
    pub const PONG_NOT_RECEIVED: CloseCode = CloseCode(4201);
    /// Inbound frame larger than the configured limit (RFC 6455).
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// The client broke the WebSocket framing rules (unmasked frame, reserved opcode or bits,
    /// fragmented control frame...) (RFC 6455 7.4.1).
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// A text message that is not valid UTF-8 (RFC 6455 7.4.1).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);

    /// The number on the wire.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A code only ever carried inside a `pusher:error` frame, never as a close code (12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(u16);

impl ErrorCode {
    /// Client event rate limit exceeded.
    pub const CLIENT_EVENT_RATE_LIMIT: ErrorCode = ErrorCode(4301);
    /// Watchlist larger than the limit.
    pub const WATCHLIST_LIMIT: ErrorCode = ErrorCode(4302);

    /// The number on the wire.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_stay_out_of_the_error_range_and_error_codes_stay_in_it() {
        let close = [
            CloseCode::APP_ONLY_TLS,
            CloseCode::APP_NOT_FOUND,
            CloseCode::APP_DISABLED,
            CloseCode::APP_OVER_QUOTA,
            CloseCode::UNSUPPORTED_PROTOCOL,
            CloseCode::NO_PROTOCOL,
            CloseCode::UNAUTHORIZED,
            CloseCode::OVER_CAPACITY,
            CloseCode::RECONNECT,
            CloseCode::PONG_NOT_RECEIVED,
            CloseCode::MESSAGE_TOO_BIG,
            CloseCode::PROTOCOL_ERROR,
            CloseCode::INVALID_PAYLOAD,
        ];
        for code in close {
            assert!(!(4300..4400).contains(&code.get()), "{code} is an error code");
        }
        for code in [ErrorCode::CLIENT_EVENT_RATE_LIMIT, ErrorCode::WATCHLIST_LIMIT] {
            assert!((4300..4400).contains(&code.get()), "{code}");
        }
    }

    #[test]
    fn numbers_on_the_wire_are_pushers() {
        assert_eq!(CloseCode::UNAUTHORIZED.get(), 4009);
        assert_eq!(CloseCode::RECONNECT.to_string(), "4200");
        assert_eq!(CloseCode::MESSAGE_TOO_BIG.get(), 1009);
        assert_eq!(ErrorCode::CLIENT_EVENT_RATE_LIMIT.get(), 4301);
    }
}
