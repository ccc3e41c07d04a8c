//! `inbound_message`: see `herald::fuzzing::inbound_message` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::inbound_message(data));
