//! Reloading without a restart (SIGHUP): the apps and the TLS certificate.
//!
//! `main` re-reads the configuration (the file and the environment, the same way as at
//! start-up) and hands the result to [`RunningServer::reload`], which does two independent
//! parts, each keeping its old state when it fails:
//!
//! **The configuration** ([`RunningServer::reload_config`]):
//! 1. keeps the running configuration when the new one does not validate (the error names the
//!    key; `herald_config_reloads_total{result="error"}`, and a `config_reload_failed` alert
//!    with the error);
//! 2. reports the keys that changed but only apply after a restart (`config/reload.rs`) and
//!    leaves them as they were;
//! 3. with a SQL app store, reads the table at once (the apps live there, not in the file);
//!    otherwise replaces the apps in the [`crate::apps::Directory`], then tells the webhooks
//!    (the apps' targets, `Webhooks::set_apps`) and the hub what changed: sessions read a
//!    changed app (rotated secret, new limits) before their next frame, a disabled or removed
//!    app's connections are closed with 4003, every other connection stays open;
//!    `herald_config_reloads_total{result="ok"}`.
//!
//! **The certificate** ([`RunningServer::reload_tls`]): the `[tls]` files are read again; new
//! handshakes use the new pair at once while open connections keep theirs; a pair that does
//! not load is kept out (`herald_tls_reloads_total{result}`, `tls.rs`).

use herald_core::app::AppChange;

use crate::alerts::{Alert, AlertKind};
use crate::config::reload::restart_needed;
use crate::config::{Config, ConfigError};
use crate::server::RunningServer;

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// The new configuration did not validate: why (nothing of it was applied).
    pub error: Option<String>,
    /// Apps added or changed, by id.
    pub updated: Vec<String>,
    /// Apps removed, by id.
    pub removed: Vec<String>,
    /// Keys whose new value needs a restart (left as they were).
    pub restart_needed: Vec<String>,
    /// The `[tls]` certificate/key pair.
    pub tls: TlsReload,
}

/// The outcome of reloading the `[tls]` pair.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum TlsReload {
    /// herald serves plain HTTP: nothing to reload.
    #[default]
    NotConfigured,
    /// New handshakes use the pair just read; `serial` is its leaf's serial number (hex).
    Reloaded { serial: String },
    /// The files did not load; the previous pair is still served. `error` names the key.
    Kept { error: String },
}

impl RunningServer {
    /// Both parts of a reload (see the module doc), each logged.
    pub async fn reload(&self, loaded: Result<Config, ConfigError>) -> ReloadReport {
        let mut report = self.reload_config(loaded);
        report.tls = self.reload_tls();
        report
    }

    /// Re-reads the `[tls]` pair (see the module doc). Logs the outcome.
    pub fn reload_tls(&self) -> TlsReload {
        let outcome = match self.tls() {
            None => TlsReload::NotConfigured,
            Some(tls) => match tls.reload() {
                Ok(serial) => TlsReload::Reloaded { serial },
                Err(e) => TlsReload::Kept { error: e.to_string() },
            },
        };
        match &outcome {
            TlsReload::NotConfigured => {}
            TlsReload::Reloaded { serial } => tracing::info!("tls: certificate reloaded (serial {serial})"),
            TlsReload::Kept { error } => tracing::warn!("tls: kept the previous certificate ({error})"),
        }
        outcome
    }

    /// Applies a re-read configuration (see the module doc). Logs the outcome.
    pub fn reload_config(&self, loaded: Result<Config, ConfigError>) -> ReloadReport {
        let state = self.state();
        let metrics = &state.hub.metrics;
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                metrics.labelled_counter("herald_config_reloads_total", "result", "error").increment(1);
                tracing::error!("config reload failed, the running configuration stays: {e}");
                let message = format!("the new configuration does not validate; the running one stays: {e}");
                let alert = Alert::new(AlertKind::ConfigReloadFailed, message).detail("error", e.to_string());
                state.alerts.emit(alert);
                return ReloadReport { error: Some(e.to_string()), ..ReloadReport::default() };
            }
        };
        let mut report = ReloadReport {
            restart_needed: restart_needed(&state.config, &new).into_iter().map(str::to_owned).collect(),
            ..ReloadReport::default()
        };
        if !report.restart_needed.is_empty() {
            tracing::warn!(
                keys = %report.restart_needed.join(", "),
                "config reload: these keys changed but need a restart; they keep their running values"
            );
        }
        if let Some(sync) = state.store.clone() {
            // Apps come from the table: read it now instead of waiting for `cache_ttl`.
            let state = state.clone();
            tokio::spawn(async move {
                if let Ok(replaced) = sync.refresh(&state.apps).await {
                    state.apply_app_changes(replaced);
                }
            });
            metrics.labelled_counter("herald_config_reloads_total", "result", "ok").increment(1);
            tracing::info!("config reloaded; the apps are read from the app store again");
            return report;
        }
        let replaced = state.apps.replace(new.apps, new.webhooks);
        for change in &replaced.changes {
            match change {
                AppChange::Updated(app) => report.updated.push(app.id.clone()),
                AppChange::Removed(id) => report.removed.push(id.clone()),
            }
        }
        state.apply_app_changes(replaced);
        report.updated.sort();
        report.removed.sort();
        metrics.labelled_counter("herald_config_reloads_total", "result", "ok").increment(1);
        tracing::info!(
            apps = state.apps.len(),
            updated = %report.updated.join(", "),
            removed = %report.removed.join(", "),
            "config reloaded"
        );
        report
    }
}
