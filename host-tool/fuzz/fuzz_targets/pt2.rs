//! Whole `.pt2` archives through the reader, the lowering and the blob writer (see `tests/common/targets.rs`).

#![no_main]

#[path = "../../tests/common/builders.rs"]
mod builders;
#[path = "../../tests/common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::pt2(data));
