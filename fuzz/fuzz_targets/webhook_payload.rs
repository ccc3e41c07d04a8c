//! `webhook_payload`: see `herald::fuzzing::webhook_payload` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::webhook_payload(data));
