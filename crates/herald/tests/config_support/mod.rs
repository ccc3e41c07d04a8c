//! Helpers shared by the config test files: a temporary config file and `load_from` with an
//! explicit environment (never the process's), so the tests do not depend on the machine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use herald::config::{load_from, Config, ConfigError};

/// A config file in the temp dir, removed on drop. Names are unique per process and test.
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn new(contents: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "herald-config-test-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("write temp config");
        TempFile(path)
    }
    pub(crate) fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub(crate) fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut full = vec!["herald"];
    full.extend_from_slice(args);
    load_from(full, &env(vars))
}

pub(crate) fn load_err(args: &[&str], vars: &[(&str, &str)]) -> String {
    match load(args, vars) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}
