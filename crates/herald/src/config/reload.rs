//! What a configuration reload (SIGHUP) may change.
//!
//! Apps (`[[apps]]`, their limits, flags and `[[apps.webhooks]]`, or the `HERALD_APP_*`
//! variables) change at run time; with a SQL app store a reload reads the table at once
//! instead (`[app_store]` itself needs a restart). Every other key is read once at start-up by something that
//! cannot be rebuilt under live connections (the listeners, the adapter, the outbox, the
//! per-connection buffers), so a reload that changes one reports it as needing a restart and
//! leaves it as it was. (`tls` names the certificate files: a reload re-reads the files it
//! started with; other paths need a restart.) [`restart_needed`] names those keys; it destructures the whole
//! [`Config`], so a new key does not compile until it is sorted into one list or the other.

use super::Config;

/// Compares every key of `new` that only a restart applies with `old`, and names the ones
/// that differ.
macro_rules! restart_keys {
    ($old:expr, $new:expr; $($key:ident),* $(,)?) => {{
        let Config {
            $($key: _,)*
            // run-time keys, applied by the reload
            apps: _,
            webhooks: _,
            // not keys: how the config was loaded
            default_app_in_use: _,
            check_only: _,
            config_file: _,
            warnings: _,
        } = $new;
        let mut changed: Vec<&'static str> = Vec::new();
        $(if $old.$key != $new.$key {
            changed.push(stringify!($key));
        })*
        changed
    }};
}

/// The keys whose new value differs from the running one but only applies after a restart.
pub(crate) fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    restart_keys!(old, new;
        host, port, path_prefix, activity_timeout, pong_timeout, authorized_connection_timeout,
        max_ws_message_kb, max_http_body_kb, api_timestamp_tolerance, strict_protocol_param,
        max_connections, outbound_queue_messages, outbound_queue_kb, shutdown_grace,
        shutdown_drain_window_ms, listen_backlog, cache_ttl, subscription_count_threshold,
        subscription_count_throttle, log_format, log_level, data_dir, webhook_removal_delay_ms,
        webhook_batch_ms, webhook_batch_max, webhook_retry_initial_ms, webhook_retry_max_elapsed,
        webhook_timeout, webhook_queue_size, webhook_max_pending, webhook_dead_letters_max,
        webhook_dead_letter_max_age, webhook_cache_miss_dedup_max, trusted_proxies,
        http_header_read_timeout, http_keep_alive_timeout, http_body_read_timeout,
        max_pending_connections, ws_connect_rate_per_ip, ws_connect_burst_per_ip, fd_reserve,
        metrics_port, metrics_host, adapter, app_store, tls, datadog, alerts, console,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_from;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["herald"];
        all.extend_from_slice(args);
        load_from(all, &std::collections::HashMap::new()).expect("valid")
    }

    #[test]
    fn only_start_up_keys_are_reported_and_apps_are_not() {
        let old = config(&[]);
        let mut new = config(&["--port", "7001", "--log-level", "debug"]);
        new.apps[0].secret = "rotated".into();
        assert_eq!(restart_needed(&old, &new), ["port", "log_level"]);
        assert!(restart_needed(&old, &old.clone()).is_empty());
    }
}
