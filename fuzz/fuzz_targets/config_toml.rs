//! `config_toml`: see `herald::fuzzing::config_toml` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::config_toml(data));
