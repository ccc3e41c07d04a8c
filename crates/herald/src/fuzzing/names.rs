//! Target `names`: channel names (PROTOCOL.md 4.1, 4.2), event names (4.3) and socket ids
//! (2.5), the strings every surface validates before using them as keys.
//!
//! Invariants: each validator agrees with an independent restatement of its rule (so the
//! fuzzer looks for inputs where the two differ, not only for panics); a channel's kind
//! predicates agree with its prefix; a socket id round-trips through its text and serde forms.

use herald_protocol::channel::{validate_channel_name, ChannelKind, ChannelNameError, SERVER_TO_USER_PREFIX};
use herald_protocol::event::{validate_event_name, EventNameError};
use herald_protocol::socket_id::SocketId;

use super::input::Input;

/// Runs one input: a limit byte, then the name (the rest of the input).
pub fn names(data: &[u8]) {
    let mut input = Input::new(data);
    // 0 (an invalid config, but the function must still behave) up to 255.
    let max_len = usize::from(input.byte());
    let Ok(name) = std::str::from_utf8(input.rest()) else { return };
    check_channel_name(name, max_len);
    check_channel_name(name, 200);
    check_event_name(name, max_len);
    check_socket_id(name);
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_=@,.;".contains(&b)
}

fn check_channel_name(name: &str, max_len: usize) {
    let body = name.strip_prefix(SERVER_TO_USER_PREFIX).unwrap_or(name);
    let expected = if name.is_empty() {
        Err(ChannelNameError::Empty)
    } else if name.len() > max_len {
        Err(ChannelNameError::TooLong(max_len))
    } else if body.is_empty() || !body.bytes().all(name_byte) {
        Err(ChannelNameError::InvalidCharacters)
    } else {
        Ok(ChannelKind::of(name))
    };
    assert_eq!(validate_channel_name(name, max_len), expected, "{name:?} (max {max_len})");

    let kind = ChannelKind::of(name);
    let private = name.starts_with("private-");
    let presence = name.starts_with("presence-");
    assert_eq!(kind.requires_signature(), private || presence, "{name:?}");
    assert_eq!(kind.is_presence(), presence, "{name:?}");
    assert_eq!(kind.is_encrypted(), name.starts_with("private-encrypted-"), "{name:?}");
    assert_eq!(kind.is_internal(), name.starts_with(SERVER_TO_USER_PREFIX), "{name:?}");
    let cache = ["private-encrypted-cache-", "private-cache-", "presence-cache-", "cache-"];
    assert_eq!(kind.is_cache(), cache.iter().any(|p| name.starts_with(p)), "{name:?}");
    assert_eq!(kind.allows_client_events(), (private && !kind.is_encrypted()) || presence, "{name:?}");
}

fn check_event_name(name: &str, max_len: usize) {
    let expected = if name.is_empty() {
        Err(EventNameError::Empty)
    } else if name.chars().count() > max_len {
        Err(EventNameError::TooLong(max_len))
    } else if name.starts_with("pusher:") || name.starts_with("pusher_internal:") {
        Err(EventNameError::Reserved)
    } else {
        Ok(())
    };
    assert_eq!(validate_event_name(name, max_len), expected, "{name:?} (max {max_len})");
}

fn check_socket_id(text: &str) {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let shaped = text.split_once('.').is_some_and(|(a, b)| digits(a) && digits(b));
    match text.parse::<SocketId>() {
        Ok(id) => {
            assert!(shaped, "{text:?} accepted");
            let printed = id.to_string();
            assert_eq!(printed.parse::<SocketId>(), Ok(id));
            // The printed form is the input without leading zeros.
            let (a, b) = text.split_once('.').unwrap_or_default();
            let strip = |p: &str| match p.trim_start_matches('0') {
                "" => "0".to_owned(),
                s => s.to_owned(),
            };
            assert_eq!(printed, format!("{}.{}", strip(a), strip(b)));
            let json = serde_json::to_string(&id).expect("serializes");
            assert_eq!(serde_json::from_str::<SocketId>(&json).ok(), Some(id));
        }
        Err(_) => {
            // Refused only when malformed or out of range.
            if let Some((a, b)) = text.split_once('.').filter(|_| shaped) {
                assert!(a.parse::<u32>().is_err() || b.parse::<u64>().is_err(), "{text:?} refused");
            }
        }
    }
}
