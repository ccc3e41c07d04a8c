//! The `[console]` table: the browser console under `/console` (docs/OPERATIONS.md, "Console").
//!
//! ```toml
//! [console]
//! enabled = true          # default false: every /console path is 404
//! username = "admin"      # default "admin"
//! password = "…"          # required when enabled, at least 8 characters
//! ```
//! Env `HERALD_CONSOLE_ENABLED`, `HERALD_CONSOLE_USERNAME` and `HERALD_CONSOLE_PASSWORD`; each
//! key is layered on its own (file < env), so the password can stay out of the file. Enabled
//! without a password is an error naming `console.password`. Read at start-up only (a reload
//! that changes it reports that it needs a restart).

use std::collections::HashMap;

use serde::Deserialize;

use super::ConfigError;

/// The environment variables of this table.
pub(crate) const CONSOLE_VARS: [&str; 3] =
    ["HERALD_CONSOLE_ENABLED", "HERALD_CONSOLE_USERNAME", "HERALD_CONSOLE_PASSWORD"];

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// `[console]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConsole {
    pub enabled: Option<bool>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The resolved `[console]` table of an enabled console. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// `console.username`. Default `admin`.
    pub username: String,
    /// `console.password`, at least [`MIN_PASSWORD_LEN`] characters.
    pub password: String,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Layers the three keys (file < env) and validates them; `None` while the console is off.
pub(super) fn resolve(
    file: Option<&FileConsole>,
    env: &HashMap<String, String>,
) -> Result<Option<ConsoleConfig>, ConfigError> {
    let file = file.cloned().unwrap_or_default();
    let enabled = match env.get(CONSOLE_VARS[0]) {
        Some(v) => super::env::boolean(v.trim()).map_err(|reason| ConfigError::InvalidValue {
            key: "console.enabled".into(),
            value: v.clone(),
            source_name: CONSOLE_VARS[0].into(),
            reason: reason.into(),
        })?,
        None => file.enabled.unwrap_or(false),
    };
    if !enabled {
        return Ok(None);
    }
    let username = env.get(CONSOLE_VARS[1]).cloned().or(file.username).unwrap_or_else(|| "admin".to_owned());
    if username.is_empty() || username.contains(':') || username.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            "console.username",
            "must be non-empty, without ':' or control characters (HTTP Basic cannot carry them)",
        ));
    }
    let Some(password) = env.get(CONSOLE_VARS[2]).cloned().or(file.password) else {
        return Err(ConfigError::invalid(
            "console.password",
            "missing; required when console.enabled is true (also HERALD_CONSOLE_PASSWORD)",
        ));
    };
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ConfigError::invalid(
            "console.password",
            format!("too short: at least {MIN_PASSWORD_LEN} characters are required"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(ConfigError::invalid("console.password", "must not contain control characters"));
    }
    Ok(Some(ConsoleConfig { username, password }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn table(enabled: bool, password: Option<&str>) -> FileConsole {
        FileConsole { enabled: Some(enabled), username: None, password: password.map(String::from) }
    }

    #[test]
    fn off_by_default_and_when_disabled() {
        assert_eq!(resolve(None, &env(&[])).unwrap(), None);
        assert_eq!(resolve(Some(&table(false, Some("long enough"))), &env(&[])).unwrap(), None);
    }

    #[test]
    fn enabled_takes_the_default_username_and_env_overrides_the_file() {
        let c = resolve(Some(&table(true, Some("file-password"))), &env(&[])).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("admin", "file-password"));
        let e = env(&[("HERALD_CONSOLE_PASSWORD", "env-password"), ("HERALD_CONSOLE_USERNAME", "ops")]);
        let c = resolve(Some(&table(true, Some("file-password"))), &e).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("ops", "env-password"));
        let e = env(&[("HERALD_CONSOLE_ENABLED", "true"), ("HERALD_CONSOLE_PASSWORD", "12345678")]);
        assert!(resolve(None, &e).unwrap().is_some());
        assert!(!format!("{:?}", resolve(None, &e).unwrap()).contains("12345678"), "Debug shows the password");
    }

    #[test]
    fn errors_name_their_key() {
        let err = |f: Option<&FileConsole>, e: &[(&str, &str)]| resolve(f, &env(e)).unwrap_err().to_string();
        assert!(err(Some(&table(true, None)), &[]).starts_with("console.password: missing"));
        assert!(err(Some(&table(true, Some("short"))), &[]).starts_with("console.password: too short"));
        assert!(err(None, &[("HERALD_CONSOLE_ENABLED", "maybe")]).starts_with("console.enabled: invalid value"));
        let e = err(Some(&table(true, Some("12345678"))), &[("HERALD_CONSOLE_USERNAME", "a:b")]);
        assert!(e.starts_with("console.username:"), "{e}");
    }
}
