//! Fuzz-target bodies: the one definition of what each cargo-fuzz target (`fuzz/`, nightly)
//! runs and checks, shared with the corpus replay test (`tests/fuzz_corpus_replay.rs`, stable),
//! so the fuzzer and `cargo test` can never check different things.
//!
//! Not an API: hidden from the docs, kept `pub` only so the `fuzz/` crate and the integration
//! test can call it. Each body takes the raw input bytes, never panics on its own, and asserts
//! the invariants of the code under test (round-trips, "accepts exactly the right signature",
//! config bounds), so a panic is always a finding. Bodies that need crate-private items live
//! next to them (`cluster/fuzz.rs`, `config/fuzz.rs`, `http/fuzz.rs`, `webhooks/fuzz.rs`) and
//! are re-exported here; the rest are in this module's files. docs/FUZZING.md lists the
//! targets, how to run them, and what each run found.

mod auth;
pub(crate) mod input;
mod names;
mod protocol;
mod session;

pub use crate::cluster::fuzz::cluster_wire;
pub use crate::config::fuzz::config_toml;
pub use crate::webhooks::fuzz::webhook_payload;
pub use auth::{api_auth, channel_auth};
pub use names::names;
pub use protocol::inbound_message;
pub use session::{ws_frames, ws_session};

/// A target body: takes one input, panics on a finding.
pub type Body = fn(&[u8]);

/// Every target by its name (the directory under `fuzz/corpus/` and the binary under
/// `fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, Body)] = &[
    ("inbound_message", inbound_message),
    ("names", names),
    ("channel_auth", channel_auth),
    ("api_auth", api_auth),
    ("ws_session", ws_session),
    ("ws_frames", ws_frames),
    ("cluster_wire", cluster_wire),
    ("config_toml", config_toml),
    ("webhook_payload", webhook_payload),
];
