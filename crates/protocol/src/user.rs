//! Sign-in `user_data` parsing (8.1).
//!
//! Owns the validation of the user object a connection signs in with: the id becomes the
//! `#server-to-user-{id}` channel suffix, so it must obey channel-name syntax; `user_info` is
//! kept as compact JSON for presence channels joined without `channel_data` (5.6).

use crate::channel::is_name_byte;
use crate::json;

/// A parsed `user_data` object.
#[derive(Debug, Clone, PartialEq)]
pub struct UserData {
    /// The user's id (non-empty).
    pub id: String,
    /// compact JSON text; None when absent or JSON null
    pub user_info: Option<String>,
    /// Ids of the users whose online state this user watches (8.5).
    pub watchlist: Vec<String>,
}

/// Why `user_data` is refused; `Display` is the `pusher:error` message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserDataError {
    /// Not a JSON object with a usable `id`; the reason.
    #[error("Invalid user_data: {0}")]
    Invalid(String),
}

fn invalid(reason: &str) -> UserDataError {
    UserDataError::Invalid(reason.to_owned())
}

/// Section 8.1: id required non-empty string matching `^[-a-zA-Z0-9_=@,.;]+$`, len <= max_id_len;
/// watchlist optional array of strings (null treated as absent). The watchlist is returned in
/// full; truncation to the configured maximum (and the 4302 error) is the caller's decision.
pub fn parse_user_data(user_data: &str, max_id_len: usize) -> Result<UserData, UserDataError> {
    let fields = json::object_fields(user_data).map_err(|_| invalid("not a JSON object"))?;
    let raw_id = fields.get("id").ok_or_else(|| invalid("id is missing"))?;
    let id = json::as_string(raw_id).ok_or_else(|| invalid("id must be a string"))?;
    if id.is_empty() {
        return Err(invalid("id is empty"));
    }
    if id.len() > max_id_len {
        return Err(UserDataError::Invalid(format!("id is longer than {max_id_len} characters")));
    }
    if !id.bytes().all(is_name_byte) {
        return Err(invalid("id contains characters outside [-a-zA-Z0-9_=@,.;]"));
    }
    let user_info = fields.get("user_info").filter(|raw| !json::is_null(raw)).map(|raw| json::compact(raw.get()));
    let watchlist = match fields.get("watchlist").filter(|raw| !json::is_null(raw)) {
        None => Vec::new(),
        Some(raw) => serde_json::from_str::<Vec<String>>(raw.get())
            .map_err(|_| invalid("watchlist must be an array of strings"))?,
    };
    Ok(UserData { id, user_info, watchlist })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn herald_vector_e_user_data_parsed() {
        let u = parse_user_data(r#"{"id":"u-1","user_info":{"name":"Ada"},"watchlist":["u-2","u-3"]}"#, 184).unwrap();
        assert_eq!(u.id, "u-1");
        assert_eq!(u.user_info.as_deref(), Some(r#"{"name":"Ada"}"#));
        assert_eq!(u.watchlist, ["u-2", "u-3"]);
    }

    #[test]
    fn minimal_user_data_has_no_info_and_empty_watchlist() {
        let u = parse_user_data(r#"{"id":"12345"}"#, 184).unwrap();
        assert_eq!(u, UserData { id: "12345".into(), user_info: None, watchlist: vec![] });
        let u = parse_user_data(r#"{"id":"1","user_info":null,"watchlist":null}"#, 184).unwrap();
        assert_eq!(u.user_info, None);
        assert!(u.watchlist.is_empty());
    }

    #[test]
    fn numeric_id_rejected() {
        assert_eq!(parse_user_data(r#"{"id":12345}"#, 184), Err(UserDataError::Invalid("id must be a string".into())));
    }

    #[test]
    fn missing_or_empty_id_rejected() {
        assert!(parse_user_data(r#"{"user_info":{}}"#, 184).is_err());
        assert!(parse_user_data(r#"{"id":""}"#, 184).is_err());
    }

    #[test]
    fn id_with_bad_characters_rejected() {
        for ud in [r#"{"id":"a b"}"#, r#"{"id":"a#b"}"#, r#"{"id":"ą"}"#, r#"{"id":"a/b"}"#] {
            assert!(parse_user_data(ud, 184).is_err(), "{ud}");
        }
    }

    #[test]
    fn id_length_limit_enforced() {
        let ok = format!(r#"{{"id":"{}"}}"#, "a".repeat(184));
        assert!(parse_user_data(&ok, 184).is_ok());
        let long = format!(r#"{{"id":"{}"}}"#, "a".repeat(185));
        assert!(parse_user_data(&long, 184).is_err());
    }

    #[test]
    fn non_string_watchlist_entries_rejected() {
        assert!(parse_user_data(r#"{"id":"a","watchlist":[1]}"#, 184).is_err());
        assert!(parse_user_data(r#"{"id":"a","watchlist":"u-2"}"#, 184).is_err());
    }

    #[test]
    fn non_object_user_data_rejected() {
        for ud in ["", "[]", "\"x\"", "{", "null"] {
            assert_eq!(parse_user_data(ud, 184), Err(UserDataError::Invalid("not a JSON object".into())), "{ud:?}");
        }
    }
}
