//! The size and arena figures of docs/FIGURES.md, for every catalog entry: blob bytes (fp16 and f32)
//! against the fp32 weight bytes (4 x PyTorch's parameter count), arena against its lower bound.
//!
//! Weights: the torch-saved fixture checkpoint where there is one (`tests/fixtures/models/` or the
//! uncommitted `tests/fixtures/local/`), otherwise seeded random values for every key the spec
//! declares (`graph::random::random_state_dict`; the keys and shapes equal torch's manifest, as
//! `graph_fixtures.rs` checks). Sizes do not depend on the values. Reproduce with
//! `cargo test --release -p nnblob --test blob_figures -- --ignored --nocapture`.

use std::path::{Path, PathBuf};

use nnblob::blob::{self, WeightDtype};
use nnblob::checkpoint::{self, Options};
use nnblob::graph::random::random_state_dict;
use nnblob::graph::{bind, catalog, summarize};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
#[ignore = "builds blobs of every catalog entry, VGG included; run in release"]
fn size_and_arena_figures() {
    println!(
        "| model | weights | params | fp32 weight bytes | fp16 blob | ratio | f32 blob | ratio | \
         arena bytes | lower bound | ratio |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for e in catalog::ENTRIES {
        let graph = e.graph().unwrap();
        let params = summarize(&graph).total_params as usize;
        let fp32 = 4 * params;
        let ckpt = ["tests/fixtures/models", "tests/fixtures/local"]
            .iter()
            .map(|d| repo().join(d).join(e.name).join("state_dict.pth"))
            .find(|p| p.is_file());
        let mut row = Vec::new();
        let mut arena = (0, 0);
        for dtype in [WeightDtype::F16, WeightDtype::F32] {
            let (sd, source) = match &ckpt {
                Some(p) => (
                    blob::state_dict(&checkpoint::open(p, &Options::default()).unwrap()),
                    "torch checkpoint",
                ),
                None => (random_state_dict(&graph, 1), "seeded random"),
            };
            if row.is_empty() {
                row.push(source.to_string());
            }
            let bound = bind(graph.clone(), sd).unwrap_or_else(|err| panic!("{err}"));
            let built = blob::build(bound, [0; 32], dtype).unwrap_or_else(|err| panic!("{err}"));
            let bytes = built.bytes.len();
            row.push(format!("{bytes} | {:.3}", bytes as f64 / fp32 as f64));
            if dtype == WeightDtype::F16 {
                assert!(
                    bytes <= fp32 * 51 / 100 + 4096,
                    "{}: fp16 blob {bytes} > 0.51 x {fp32} + 4 KiB",
                    e.name
                );
            }
            arena = (built.plan.arena_bytes(), built.plan.lower_bound_bytes());
        }
        assert!(arena.0 * 10 <= arena.1 * 11, "{}: arena {arena:?}", e.name);
        println!(
            "| {} | {} | {params} | {fp32} | {} | {} | {} | {} | {:.3} |",
            e.name,
            row[0],
            row[1],
            row[2],
            arena.0,
            arena.1,
            arena.0 as f64 / arena.1 as f64
        );
    }
}
