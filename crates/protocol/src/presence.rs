//! Presence `channel_data` parsing (5.5).
//!
//! Owns the normalisation of a presence member: `user_id` may arrive as a string or a number
//! (hosted accepts `{"user_id":1265}`) and is always stored as a string; `user_info` is kept as
//! compact JSON text with its original key order and escapes, so members are forwarded verbatim.

use crate::json;

/// One presence member as announced by a subscribing connection.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceMember {
    /// The member's id (a JSON string or number in `channel_data`, kept as text).
    pub user_id: String,
    /// compact JSON text of user_info, None when absent or JSON null
    pub user_info: Option<String>,
}

/// Why `channel_data` is refused; `Display` is the `pusher:error` message (5.9).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelDataError {
    /// Not a JSON object with a usable `user_id`; the reason.
    #[error("Invalid channel_data: {0}")]
    Invalid(String),
}

fn invalid(reason: &str) -> ChannelDataError {
    ChannelDataError::Invalid(reason.to_owned())
}

/// Section 5.5: user_id string or number (number -> its JSON text), max `max_user_id_len` chars.
pub fn parse_channel_data(channel_data: &str, max_user_id_len: usize) -> Result<PresenceMember, ChannelDataError> {
    let fields = json::object_fields(channel_data).map_err(|_| invalid("not a JSON object"))?;
    let raw_id = fields.get("user_id").ok_or_else(|| invalid("user_id is missing"))?;
    let user_id = if json::is_string(raw_id) {
        json::as_string(raw_id).ok_or_else(|| invalid("user_id is not a valid string"))?
    } else if serde_json::from_str::<serde_json::Number>(raw_id.get()).is_ok() {
        json::raw_text(raw_id).to_owned()
    } else {
        return Err(invalid("user_id must be a string or a number"));
    };
    if user_id.is_empty() {
        return Err(invalid("user_id is empty"));
    }
    if user_id.chars().count() > max_user_id_len {
        return Err(ChannelDataError::Invalid(format!("user_id is longer than {max_user_id_len} characters")));
    }
    let user_info = fields.get("user_info").filter(|raw| !json::is_null(raw)).map(|raw| json::compact(raw.get()));
    Ok(PresenceMember { user_id, user_info })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_user_id_and_object_info_parsed() {
        let m = parse_channel_data(r#"{"user_id":"u-1","user_info":{"name":"Ada"}}"#, 128).unwrap();
        assert_eq!(m.user_id, "u-1");
        assert_eq!(m.user_info.as_deref(), Some(r#"{"name":"Ada"}"#));
    }

    #[test]
    fn numeric_user_id_becomes_its_json_text() {
        let m = parse_channel_data(r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#, 128).unwrap();
        assert_eq!(m.user_id, "10");
        assert_eq!(m.user_info.as_deref(), Some(r#"{"name":"Mr. Channels"}"#));
    }

    #[test]
    fn python_spaced_channel_data_is_compacted_in_order() {
        let m = parse_channel_data(r#"{"user_id": "u-1", "user_info": {"z": 1, "a": "b c"}}"#, 128).unwrap();
        assert_eq!(m.user_id, "u-1");
        assert_eq!(m.user_info.as_deref(), Some(r#"{"z":1,"a":"b c"}"#));
    }

    #[test]
    fn escaped_user_id_is_decoded() {
        let m = parse_channel_data(r#"{"user_id":"a\/b\u00e9"}"#, 128).unwrap();
        assert_eq!(m.user_id, "a/bé");
    }

    #[test]
    fn user_info_absent_or_null_is_none() {
        assert_eq!(parse_channel_data(r#"{"user_id":"u"}"#, 128).unwrap().user_info, None);
        assert_eq!(parse_channel_data(r#"{"user_id":"u","user_info":null}"#, 128).unwrap().user_info, None);
    }

    #[test]
    fn non_object_user_info_kept() {
        let m = parse_channel_data(r#"{"user_id":"u","user_info":"hi"}"#, 128).unwrap();
        assert_eq!(m.user_info.as_deref(), Some("\"hi\""));
    }

    #[test]
    fn empty_user_id_rejected() {
        let e = parse_channel_data(r#"{"user_id":""}"#, 128).unwrap_err();
        assert_eq!(e.to_string(), "Invalid channel_data: user_id is empty");
    }

    #[test]
    fn missing_user_id_rejected() {
        assert!(parse_channel_data(r#"{"user_info":{}}"#, 128).is_err());
        assert!(parse_channel_data("{}", 128).is_err());
    }

    #[test]
    fn object_array_bool_null_user_id_rejected() {
        for cd in [r#"{"user_id":{"a":1}}"#, r#"{"user_id":[1]}"#, r#"{"user_id":true}"#, r#"{"user_id":null}"#] {
            assert!(parse_channel_data(cd, 128).is_err(), "{cd}");
        }
    }

    #[test]
    fn user_id_of_129_chars_rejected_128_accepted() {
        let ok = format!(r#"{{"user_id":"{}"}}"#, "a".repeat(128));
        assert!(parse_channel_data(&ok, 128).is_ok());
        let long = format!(r#"{{"user_id":"{}"}}"#, "a".repeat(129));
        assert_eq!(
            parse_channel_data(&long, 128),
            Err(ChannelDataError::Invalid("user_id is longer than 128 characters".into()))
        );
    }

    #[test]
    fn non_object_channel_data_rejected() {
        for cd in ["", "null", "[]", "\"u-1\"", "10", "{", "{\"user_id\":\"u\"} x"] {
            assert_eq!(
                parse_channel_data(cd, 128),
                Err(ChannelDataError::Invalid("not a JSON object".into())),
                "{cd:?}"
            );
        }
    }
}
