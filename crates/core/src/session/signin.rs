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

/// A sign-in that passed every check and, in cluster mode, waits until this node receives the
/// user's `#server-to-user-` traffic before it replies (so an event sent to the user right after
/// `signin_success` reaches this connection from whichever node it is published on).
#[derive(Debug)]
pub struct PendingSignin {
    /// `#server-to-user-{id}`: the channel the cluster adapter must prepare.
    pub(super) channel: String,
    id: Arc<str>,
    user_info: Option<Arc<str>>,
    watchlist: Vec<String>,
    truncated: bool,
    user_data: String,
}

impl Session {
    /// Verifies a sign-in; completes it at once on a single node, or returns it pending when
    /// the cluster must prepare the user's channel first.
    pub(super) fn signin(&mut self, auth: &str, user_data: &str) -> Option<super::Pending> {
        match self.check_signin(auth, user_data) {
            Err(message) => {
                // Never close here: pusher-js would stop reconnecting for good (8.2).
                self.send_error(None, &message);
                None
            }
            Ok(p) if self.hub.adapter().is_clustered() => Some(super::Pending::Signin(p)),
            Ok(p) => {
                self.finish_signin(p);
                None
            }
        }
    }

    fn check_signin(&self, auth: &str, user_data: &str) -> Result<PendingSignin, String> {
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
        let mut watchlist = parsed.watchlist;
        let max_watch = self.app.limits.max_watchlist_size;
        let truncated = watchlist.len() > max_watch;
        watchlist.truncate(max_watch);
        Ok(PendingSignin {
            channel: format!("#server-to-user-{}", parsed.id),
            id: parsed.id.into(),
            user_info: parsed.user_info.map(Arc::from),
            watchlist,
            truncated,
            user_data: user_data.to_owned(),
        })
    }

    /// Binds the connection to the user and replies (after `prepare` in cluster mode).
    pub(super) fn finish_signin(&mut self, p: PendingSignin) {
        let mut replies = vec![outbound::signin_success(&p.user_data)];
        if p.truncated {
            let max_watch = self.app.limits.max_watchlist_size;
            self.hub.metrics.error(Some(ErrorCode::WATCHLIST_LIMIT));
            replies.push(outbound::error(
                Some(ErrorCode::WATCHLIST_LIMIT),
                &format!("Watchlist has more than {max_watch} entries; only the first {max_watch} are used"),
            ));
        }
        self.authorized = true;
        let watch_events = self.app.limits.enable_watchlist_events;
        if self.ns.users.sign_in(&self.conn, &p.id, replies, &p.watchlist, watch_events, &self.hub.metrics) {
            self.tell(crate::adapter::LocalChange::UserOnline { user_id: p.id.clone() });
        }
        self.user = Some(SignedInUser { id: p.id, user_info: p.user_info, watchlist: p.watchlist });
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&SignedInUser> {
        self.user.as_ref()
    }
}
