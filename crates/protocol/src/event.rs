//! Event-name validation (4.3).
//!
//! Owns the single rule set for names published over HTTP or sent by clients: 1..=max
//! characters, any characters (Laravel uses backslashes and dots), but never the service's
//! reserved `pusher:` / `pusher_internal:` namespaces.

/// Why an event name is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventNameError {
    /// The name is the empty string.
    #[error("event name is empty")]
    Empty,
    /// The name is longer than the limit (in characters).
    #[error("event name is longer than {0} characters")]
    TooLong(usize),
    /// The name starts with `pusher:` or `pusher_internal:`.
    #[error("event name uses a reserved prefix (pusher: or pusher_internal:)")]
    Reserved,
}

/// Validates an event name; length is counted in characters (4.3), no charset restriction.
pub fn validate_event_name(name: &str, max_len: usize) -> Result<(), EventNameError> {
    if name.is_empty() {
        return Err(EventNameError::Empty);
    }
    if name.chars().count() > max_len {
        return Err(EventNameError::TooLong(max_len));
    }
    if name.starts_with("pusher:") || name.starts_with("pusher_internal:") {
        return Err(EventNameError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laravel_class_names_and_dots_accepted() {
        assert_eq!(validate_event_name("App\\Events\\OrderShipped", 200), Ok(()));
        assert_eq!(validate_event_name("order.shipped", 200), Ok(()));
        assert_eq!(validate_event_name("client-typing", 200), Ok(()));
    }

    #[test]
    fn empty_event_name_rejected() {
        assert_eq!(validate_event_name("", 200), Err(EventNameError::Empty));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(validate_event_name(&"é".repeat(200), 200), Ok(()));
        assert_eq!(validate_event_name(&"é".repeat(201), 200), Err(EventNameError::TooLong(200)));
    }

    #[test]
    fn reserved_prefixes_rejected() {
        assert_eq!(validate_event_name("pusher:foo", 200), Err(EventNameError::Reserved));
        assert_eq!(validate_event_name("pusher_internal:member_added", 200), Err(EventNameError::Reserved));
        assert_eq!(validate_event_name("pusher-foo", 200), Ok(()));
    }
}
