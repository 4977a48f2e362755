//! Whole files through the reader and the scanner (see `tests/common/targets.rs`).

#![no_main]

#[path = "../../tests/common/builders.rs"]
mod builders;
#[path = "../../tests/common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::archive(data));
