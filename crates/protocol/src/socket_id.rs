//! Socket id parsing and formatting (2.5), and its serde form (the same string).
//!
//! Every server SDK validates socket ids against `^\d+\.\d+$` (ASCII digits) before signing or
//! excluding a recipient, so herald must only ever emit ids of that shape and must parse ids
//! received over HTTP (`socket_id` exclusion) with exactly the same rule.

use std::fmt;
use std::str::FromStr;

/// A connection id, formatted as `"{node}.{seq}"` without leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    /// The node's random half, fixed for the node's lifetime.
    pub node: u32,
    /// The connection's sequence number on that node.
    pub seq: u64,
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.seq)
    }
}

/// Why a string is not a socket id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SocketIdError {
    /// Not `digits.digits`.
    #[error("invalid socket_id: expected two unsigned decimal integers joined by a dot")]
    Malformed,
    /// A half does not fit its integer type.
    #[error("invalid socket_id: number out of range")]
    OutOfRange,
}

fn split(s: &str) -> Option<(&str, &str)> {
    let (a, b) = s.split_once('.')?;
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    (digits(a) && digits(b)).then_some((a, b))
}

impl FromStr for SocketId {
    type Err = SocketIdError;

    /// Exactly `^\d+\.\d+$` with ASCII digits (leading zeros tolerated, as the regex does);
    /// rejects signs, spaces, empty parts and values that overflow `u32.u64`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = split(s).ok_or(SocketIdError::Malformed)?;
        let node = a.parse::<u32>().map_err(|_| SocketIdError::OutOfRange)?;
        let seq = b.parse::<u64>().map_err(|_| SocketIdError::OutOfRange)?;
        Ok(SocketId { node, seq })
    }
}

/// Serialized as its string form, `"{node}.{seq}"` (how the cluster carries an excluded
/// connection to other nodes).
impl serde::Serialize for SocketId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parsed from its string form with the [`FromStr`] rule.
impl<'de> serde::Deserialize<'de> for SocketId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SocketId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a socket id string such as \"123.456\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SocketId, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `^\d+\.\d+$` semantics (ASCII digits, any length), as every server SDK checks.
    fn is_valid_socket_id(s: &str) -> bool {
        split(s).is_some()
    }

    #[test]
    fn simple_socket_id_parses_and_round_trips() {
        let id: SocketId = "1.2".parse().unwrap();
        assert_eq!(id, SocketId { node: 1, seq: 2 });
        assert_eq!(id.to_string(), "1.2");
        let hosted: SocketId = "208836.27464492".parse().unwrap();
        assert_eq!(hosted.to_string(), "208836.27464492");
    }

    #[test]
    fn leading_zeros_accepted_like_the_regex() {
        assert!(is_valid_socket_id("01.2"));
        assert_eq!("01.2".parse::<SocketId>(), Ok(SocketId { node: 1, seq: 2 }));
    }

    #[test]
    fn malformed_socket_ids_rejected() {
        for s in [
            "", "-1.2", "+1.2", "1.", ".1", "1.2.3", "a.b", "1 .2", "1. 2", " 1.2", "1.2 ", "1.2\n", "12", ".", "1,2",
            "١.٢",
        ] {
            assert!(!is_valid_socket_id(s), "{s:?}");
            assert_eq!(s.parse::<SocketId>(), Err(SocketIdError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn overflowing_parts_rejected_but_regex_valid() {
        let s = "4294967296.1";
        assert!(is_valid_socket_id(s));
        assert_eq!(s.parse::<SocketId>(), Err(SocketIdError::OutOfRange));
        let s = "1.18446744073709551616";
        assert_eq!(s.parse::<SocketId>(), Err(SocketIdError::OutOfRange));
        let max = "4294967295.18446744073709551615";
        assert_eq!(max.parse::<SocketId>().map(|i| i.to_string()).as_deref(), Ok(max));
    }

    #[test]
    fn serde_form_is_the_string_form() {
        let id = SocketId { node: 12, seq: 345 };
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""12.345""#);
        assert_eq!(serde_json::from_str::<SocketId>(r#""12.345""#).unwrap(), id);
        assert!(serde_json::from_str::<SocketId>(r#""12-345""#).is_err());
        assert!(serde_json::from_str::<SocketId>("12").is_err());
    }

    #[test]
    fn long_digit_strings_are_valid_syntax() {
        assert!(is_valid_socket_id(&format!("{}.{}", "9".repeat(50), "1".repeat(50))));
    }
}
