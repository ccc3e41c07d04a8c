//! `channel_auth`: see `herald::fuzzing::channel_auth` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::channel_auth(data));
