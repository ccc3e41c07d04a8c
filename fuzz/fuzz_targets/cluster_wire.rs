//! `cluster_wire`: see `herald::fuzzing::cluster_wire` for the input format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::cluster_wire(data));
