//! `ws_frames`: see `herald::fuzzing::ws_frames` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::ws_frames(data));
