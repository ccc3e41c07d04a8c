//! Replays every committed fuzz input through its target's body (`herald::fuzzing`), on
//! stable, as part of `cargo test`: the seeds (`fuzz/seeds/`), the minimised corpora the fuzz
//! runs kept (`fuzz/corpus/`) and each input that once failed (`fuzz/regressions/`). The bodies
//! assert the targets' invariants, so an input that breaks one fails here with its path.
//! docs/FUZZING.md says how the corpora were made.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Files of `dir`, sorted (a missing directory has none).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runs each input of `target` from the three directories; returns how many there were.
fn replay(target: &str) -> usize {
    let body = herald::fuzzing::TARGETS.iter().find(|(name, _)| *name == target).unwrap().1;
    let mut n = 0;
    for kind in ["seeds", "corpus", "regressions"] {
        for path in files(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("{target}: {} fails: {}", path.display(), msg.unwrap_or_default());
            }
            n += 1;
        }
    }
    n
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            assert!(replay(stringify!($target)) > 0, "no inputs for {}", stringify!($target));
        }
    )*};
}

replay_tests!(
    inbound_message,
    names,
    channel_auth,
    api_auth,
    ws_session,
    ws_frames,
    cluster_wire,
    config_toml,
    webhook_payload,
);

#[test]
fn every_target_is_replayed_and_has_a_fuzz_binary() {
    let replayed = [
        "inbound_message",
        "names",
        "channel_auth",
        "api_auth",
        "ws_session",
        "ws_frames",
        "cluster_wire",
        "config_toml",
        "webhook_payload",
    ];
    let targets: Vec<&str> = herald::fuzzing::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(targets, replayed);
    for name in targets {
        let bin = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(bin.is_file(), "{} is missing", bin.display());
    }
}
