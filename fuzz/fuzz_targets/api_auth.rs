//! `api_auth`: see `herald::fuzzing::api_auth` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::api_auth(data));
