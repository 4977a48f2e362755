//! Replays every input in `tests/regressions/<target>/` the way the fuzz target of that name does, so
//! an ordinary `cargo test` checks past crashes (and the hand-written attack shapes) without
//! cargo-fuzz. Each input must be handled without a panic; what it returns does not matter here.

mod common;

use std::path::Path;

use common::targets;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn unpickle_regressions_do_not_panic() {
    for (name, data) in inputs("unpickle") {
        eprintln!("{name}");
        targets::unpickle(&data);
    }
}

#[test]
fn archive_regressions_do_not_panic() {
    for (name, data) in inputs("archive") {
        eprintln!("{name}");
        targets::archive(&data);
    }
}

#[test]
fn pt2_regressions_do_not_panic() {
    for (name, data) in inputs("pt2") {
        eprintln!("{name}");
        targets::pt2(&data);
    }
}

#[test]
fn pt2_json_regressions_do_not_panic() {
    for (name, data) in inputs("pt2_json") {
        eprintln!("{name}");
        targets::pt2_json(&data);
    }
}
