//! The unpickler and the torch interpretation on top of it (see `tests/common/targets.rs`).

#![no_main]

#[path = "../../tests/common/builders.rs"]
mod builders;
#[path = "../../tests/common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::unpickle(data));
