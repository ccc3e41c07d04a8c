//! Channel kinds and channel-name syntax (4.1, 4.2).
//!
//! Owns the anchored, ordered prefix table that decides what a channel is (which in turn decides
//! whether it needs a signature, allows client events, or is cached) and the name validation
//! shared by the WebSocket and HTTP surfaces. Getting the order wrong (e.g. testing `private-`
//! before `private-encrypted-`) would let clients bypass encryption rules, so it lives here once.

/// The type of a channel, decided purely from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// `#server-to-user-{id}`
    ServerToUser,
    /// `private-encrypted-cache-…`
    EncryptedCache,
    /// `private-encrypted-…`
    Encrypted,
    /// `private-cache-…`
    PrivateCache,
    /// `private-…`
    Private,
    /// `presence-cache-…`
    PresenceCache,
    /// `presence-…`
    Presence,
    /// `cache-…`
    PublicCache,
    /// anything else
    Public,
}

/// Prefix of the per-user channel built by every SDK's `sendToUser`.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// Table 4.1, in its exact order: first match wins.
const PREFIXES: [(&str, ChannelKind); 8] = [
    (SERVER_TO_USER_PREFIX, ChannelKind::ServerToUser),
    ("private-encrypted-cache-", ChannelKind::EncryptedCache),
    ("private-encrypted-", ChannelKind::Encrypted),
    ("private-cache-", ChannelKind::PrivateCache),
    ("private-", ChannelKind::Private),
    ("presence-cache-", ChannelKind::PresenceCache),
    ("presence-", ChannelKind::Presence),
    ("cache-", ChannelKind::PublicCache),
];

impl ChannelKind {
    /// Classifies a name with anchored prefix tests in the order of table 4.1.
    pub fn of(name: &str) -> ChannelKind {
        PREFIXES.iter().find(|(prefix, _)| name.starts_with(prefix)).map_or(ChannelKind::Public, |&(_, kind)| kind)
    }

    /// Subscribing needs an `auth` signature (private*, encrypted*, presence*).
    pub fn requires_signature(self) -> bool {
        matches!(
            self,
            ChannelKind::EncryptedCache
                | ChannelKind::Encrypted
                | ChannelKind::PrivateCache
                | ChannelKind::Private
                | ChannelKind::PresenceCache
                | ChannelKind::Presence
        )
    }

    /// Presence or presence-cache.
    pub fn is_presence(self) -> bool {
        matches!(self, ChannelKind::Presence | ChannelKind::PresenceCache)
    }

    /// One of the four cache variants.
    pub fn is_cache(self) -> bool {
        matches!(
            self,
            ChannelKind::EncryptedCache
                | ChannelKind::PrivateCache
                | ChannelKind::PresenceCache
                | ChannelKind::PublicCache
        )
    }

    /// `private-encrypted-…` (cached or not).
    pub fn is_encrypted(self) -> bool {
        matches!(self, ChannelKind::Encrypted | ChannelKind::EncryptedCache)
    }

    /// `#server-to-user-…`, herald's per-user delivery channel (5.7): the app never sees it as
    /// a channel. It produces no webhooks (11.4), announces no subscription count (9.2) and is
    /// never listed by the HTTP API (10.5). The one statement of that rule.
    pub fn is_internal(self) -> bool {
        self == ChannelKind::ServerToUser
    }

    /// Client events are allowed on private and presence channels only (7.1 rule 3).
    pub fn allows_client_events(self) -> bool {
        matches!(
            self,
            ChannelKind::Private | ChannelKind::PrivateCache | ChannelKind::Presence | ChannelKind::PresenceCache
        )
    }
}

/// Why a channel name is syntactically invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelNameError {
    /// The name is the empty string.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than the limit it was checked against (carried, in bytes).
    #[error("channel name is longer than {0} characters")]
    TooLong(usize),
    /// A byte outside the name character class, or nothing after the `#server-to-user-` prefix.
    #[error("channel name contains characters outside [-a-zA-Z0-9_=@,.;]")]
    InvalidCharacters,
}

/// `[-a-zA-Z0-9_=@,.;]`, the character class of channel names and user ids (4.2, 8.1).
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'@' | b',' | b'.' | b';')
}

/// Validates syntax (4.2). `#server-to-user-{id}` is valid syntax here (callers decide who may
/// use it). Length counts bytes (names are ASCII by construction). Returns the kind.
pub fn validate_channel_name(name: &str, max_len: usize) -> Result<ChannelKind, ChannelNameError> {
    if name.is_empty() {
        return Err(ChannelNameError::Empty);
    }
    if name.len() > max_len {
        return Err(ChannelNameError::TooLong(max_len));
    }
    let body = name.strip_prefix(SERVER_TO_USER_PREFIX).unwrap_or(name);
    if body.is_empty() || !body.bytes().all(is_name_byte) {
        return Err(ChannelNameError::InvalidCharacters);
    }
    Ok(ChannelKind::of(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_table_order_first_match_wins() {
        assert_eq!(ChannelKind::of("#server-to-user-u-1"), ChannelKind::ServerToUser);
        assert_eq!(ChannelKind::of("private-encrypted-cache-x"), ChannelKind::EncryptedCache);
        assert_eq!(ChannelKind::of("private-encrypted-x"), ChannelKind::Encrypted);
        assert_eq!(ChannelKind::of("private-cache-x"), ChannelKind::PrivateCache);
        assert_eq!(ChannelKind::of("private-x"), ChannelKind::Private);
        assert_eq!(ChannelKind::of("presence-cache-x"), ChannelKind::PresenceCache);
        assert_eq!(ChannelKind::of("presence-x"), ChannelKind::Presence);
        assert_eq!(ChannelKind::of("cache-x"), ChannelKind::PublicCache);
        assert_eq!(ChannelKind::of("my-channel"), ChannelKind::Public);
    }

    #[test]
    fn presence_encrypted_is_plain_presence() {
        assert_eq!(ChannelKind::of("presence-encrypted-x"), ChannelKind::Presence);
    }

    #[test]
    fn prefixes_are_anchored() {
        assert_eq!(ChannelKind::of("x-private-y"), ChannelKind::Public);
        assert_eq!(ChannelKind::of("my-cache-x"), ChannelKind::Public);
        assert_eq!(ChannelKind::of("Private-x"), ChannelKind::Public);
        assert_eq!(ChannelKind::of("private"), ChannelKind::Public);
    }

    #[test]
    fn kind_predicates_match_table() {
        use ChannelKind::*;
        let all = [
            ServerToUser,
            EncryptedCache,
            Encrypted,
            PrivateCache,
            Private,
            PresenceCache,
            Presence,
            PublicCache,
            Public,
        ];
        let sig: Vec<_> = all.iter().map(|k| k.requires_signature()).collect();
        assert_eq!(sig, [false, true, true, true, true, true, true, false, false]);
        let ce: Vec<_> = all.iter().map(|k| k.allows_client_events()).collect();
        assert_eq!(ce, [false, false, false, true, true, true, true, false, false]);
        let cache: Vec<_> = all.iter().map(|k| k.is_cache()).collect();
        assert_eq!(cache, [false, true, false, true, false, true, false, true, false]);
        let enc: Vec<_> = all.iter().map(|k| k.is_encrypted()).collect();
        assert_eq!(enc, [false, true, true, false, false, false, false, false, false]);
        let internal: Vec<_> = all.iter().map(|k| k.is_internal()).collect();
        assert_eq!(internal, [true, false, false, false, false, false, false, false, false]);
        let pres: Vec<_> = all.iter().map(|k| k.is_presence()).collect();
        assert_eq!(pres, [false, false, false, false, false, true, true, false, false]);
    }

    #[test]
    fn empty_name_rejected() {
        assert_eq!(validate_channel_name("", 200), Err(ChannelNameError::Empty));
    }

    #[test]
    fn name_of_201_chars_rejected_200_accepted() {
        let ok = "a".repeat(200);
        assert_eq!(validate_channel_name(&ok, 200), Ok(ChannelKind::Public));
        let long = "a".repeat(201);
        assert_eq!(validate_channel_name(&long, 200), Err(ChannelNameError::TooLong(200)));
    }

    #[test]
    fn all_allowed_characters_accepted() {
        assert_eq!(validate_channel_name("private-AZaz09_-=@,.;", 200), Ok(ChannelKind::Private));
    }

    #[test]
    fn bad_characters_rejected() {
        for name in ["a b", "a/b", "a:b", "é", "a#b", "a\0", "a\n", "a%20", "*"] {
            assert_eq!(validate_channel_name(name, 200), Err(ChannelNameError::InvalidCharacters), "{name:?}");
        }
    }

    #[test]
    fn server_to_user_name_is_valid_syntax() {
        assert_eq!(validate_channel_name("#server-to-user-x", 200), Ok(ChannelKind::ServerToUser));
    }

    #[test]
    fn other_hash_names_invalid() {
        for name in ["#other", "#server-to-user-", "#server-to-user-a b", "##server-to-user-x"] {
            assert_eq!(validate_channel_name(name, 200), Err(ChannelNameError::InvalidCharacters), "{name:?}");
        }
    }

    #[test]
    fn multibyte_name_length_counts_bytes_without_panicking() {
        let name = "é".repeat(101); // 202 bytes
        assert_eq!(validate_channel_name(&name, 200), Err(ChannelNameError::TooLong(200)));
    }
}
