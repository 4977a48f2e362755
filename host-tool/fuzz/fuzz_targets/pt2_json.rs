//! The model JSON of a `.pt2` archive through the reader and the lowering (see `tests/common/targets.rs`).

#![no_main]

#[path = "../../tests/common/builders.rs"]
mod builders;
#[path = "../../tests/common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::pt2_json(data));
