//! `pusher:signin` (PROTOCOL.md 8.1–8.2): user authentication of a connection.

use std::sync::Arc;

use herald_protocol::auth::verify_user_auth;
use herald_protocol::codes::ErrorCode;
use herald_protocol::outbound;
use herald_protocol::user::parse_user_data;

use super::Session;

/// The user a connection signed in as.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    /// The user id from the signed `user_data`.
    pub id: Arc<str>,
    /// Compact JSON of `user_info`, used as presence member data when a presence subscription
    /// carries no channel_data (5.6).
    pub user_info: Option<Arc<str>>,
    /// User ids whose online state it watches, cut to `max_watchlist_size`.
    pub watchlist: Vec<String>,
}

impl Session {
    pub(super) fn signin(&mut self, auth: &str, user_data: &str) {
        if let Err(message) = self.try_signin(auth, user_data) {
            // Never close here: pusher-js would stop reconnecting for good (8.2).
            self.send_error(None, &message);
        }
    }

    fn try_signin(&mut self, auth: &str, user_data: &str) -> Result<(), String> {
        let app = self.app.clone();
        verify_user_auth(&self.conn.socket_id_str, user_data, auth, |key| {
            app.secret_for_key(key).map(|s| s.as_bytes().to_vec())
        })
        .map_err(|e| e.to_string())?;
        let parsed = parse_user_data(user_data, self.app.limits.max_user_id_length).map_err(|e| e.to_string())?;
        if let Some(current) = &self.user {
            if *current.id != *parsed.id {
                return Err(format!("Already signed in as {}; cannot sign in as {}", current.id, parsed.id));
            }
        }
        let id: Arc<str> = parsed.id.into();
        let mut watchlist = parsed.watchlist;
        let max_watch = self.app.limits.max_watchlist_size;
        let truncated = watchlist.len() > max_watch;
        watchlist.truncate(max_watch);
        self.authorized = true;
        self.send(outbound::signin_success(user_data));
        if truncated {
            self.send_error(
                Some(ErrorCode::WATCHLIST_LIMIT),
                &format!("Watchlist has more than {max_watch} entries; only the first {max_watch} are used"),
            );
        }
        let watch_events = self.app.limits.enable_watchlist_events;
        if self.ns.users.sign_in(&self.conn, &id, &watchlist, watch_events, &self.hub.metrics) {
            self.tell(crate::adapter::LocalChange::UserOnline { user_id: id.clone() });
        }
        self.user = Some(SignedInUser { id, user_info: parsed.user_info.map(Arc::from), watchlist });
        Ok(())
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&SignedInUser> {
        self.user.as_ref()
    }
}
