//! Binding a state_dict to a graph, strictly, like `load_state_dict(strict=True)`.
//!
//! In: an unbound [`Graph`] and a [`StateDict`]. Out: the graph with every node's parameters, or a
//! [`BindError`] listing, all at once, the missing keys (each with the closest key the checkpoint
//! has), the unexpected keys and the shape mismatches. `num_batches_tracked` is ignored; a
//! `module.`, `_orig_mod.` or `model.` prefix (DataParallel, `torch.compile`, Lightning) is
//! stripped when every key carries it and stripping makes the keys match.

use std::collections::BTreeSet;
use std::fmt;

use super::{fmt_shape, Graph, StateDict};

/// Prefixes wrappers add to every key.
const WRAPPER_PREFIXES: &[&str] = &["module.", "_orig_mod.", "model."];

/// Why a state_dict does not fit a graph. Every list is complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindError {
    pub model: String,
    /// Keys the graph needs and the checkpoint lacks, each with the closest checkpoint key.
    pub missing: Vec<(String, Option<String>)>,
    /// Keys the checkpoint has and the graph does not use.
    pub unexpected: Vec<String>,
    /// (key, checkpoint shape, model shape).
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl std::error::Error for BindError {}

impl fmt::Display for BindError {
    /// PyTorch's wording, one finding per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error(s) in loading state_dict for {}:", self.model)?;
        if !self.missing.is_empty() {
            write!(f, "\n    Missing key(s) in state_dict:")?;
            for (key, closest) in &self.missing {
                match closest {
                    Some(c) => write!(
                        f,
                        "\n        \"{key}\" (closest in the checkpoint: \"{c}\")"
                    )?,
                    None => write!(f, "\n        \"{key}\"")?,
                }
            }
        }
        if !self.unexpected.is_empty() {
            write!(f, "\n    Unexpected key(s) in state_dict:")?;
            for key in &self.unexpected {
                write!(f, "\n        \"{key}\"")?;
            }
        }
        for (key, ckpt, model) in &self.mismatched {
            write!(
                f,
                "\n    size mismatch for {key}: copying a param with shape {} from checkpoint, the shape in current model is {}.",
                fmt_shape(ckpt),
                fmt_shape(model)
            )?;
        }
        Ok(())
    }
}

/// Levenshtein distance between two strings (by chars).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Character comparisons [`closest`] spends at most on one name (a hostile checkpoint may
/// hold millions of long keys; the hint is a convenience, not worth minutes).
const CLOSEST_BUDGET: usize = 50_000_000;

/// The candidate nearest to `name` by edit distance (the first on ties), among those examined
/// within [`CLOSEST_BUDGET`] character comparisons: every candidate of an ordinary checkpoint.
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    closest_within(name, candidates, CLOSEST_BUDGET).0
}

/// [`closest`] with a budget of character comparisons; also returns the comparisons spent.
/// A candidate whose length differs from `name`'s by at least the best distance so far cannot
/// beat it (the distance is at least the length difference) and costs nothing.
fn closest_within<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    budget: usize,
) -> (Option<&'c str>, usize) {
    let len = name.chars().count();
    let mut best: Option<(&str, usize)> = None;
    let mut spent = 0usize;
    for c in candidates {
        let c_len = c.chars().count();
        if best.is_some_and(|(_, d)| len.abs_diff(c_len) >= d) {
            continue;
        }
        let cost = len.saturating_mul(c_len);
        if best.is_some() && spent.saturating_add(cost) > budget {
            break;
        }
        spent = spent.saturating_add(cost);
        let d = edit_distance(name, c);
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((c, d));
        }
    }
    (best.map(|(c, _)| c), spent)
}

/// Every state_dict key the graph expects, with its shape, in node order.
pub fn expected_keys(graph: &Graph) -> Vec<(String, Vec<usize>)> {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::new();
    for n in &graph.nodes {
        let Some(module) = &n.module else { continue };
        if !seen.insert(module.clone()) {
            continue;
        }
        for (suffix, shape) in n.op.params() {
            keys.push((format!("{module}.{suffix}"), shape));
        }
    }
    keys
}

fn is_ignored(key: &str) -> bool {
    key == "num_batches_tracked" || key.ends_with(".num_batches_tracked")
}

/// Strips wrapper prefixes (nested ones too, `module._orig_mod.`) shared by every key, to the
/// depth that makes the most expected keys present; nothing when stripping does not help.
fn strip_wrappers(sd: StateDict, expected: &BTreeSet<&str>) -> StateDict {
    let Some(first) = sd.keys().next() else {
        return sd;
    };
    // Candidate depths: the lengths of the wrapper prefixes every key shares, outermost first.
    let mut depths = vec![0];
    let mut at = 0;
    while let Some(p) = WRAPPER_PREFIXES
        .iter()
        .find(|p| first[at..].starts_with(*p) && sd.keys().all(|k| k[at..].starts_with(*p)))
    {
        at += p.len();
        depths.push(at);
    }
    let matches = |d: usize| sd.keys().filter(|k| expected.contains(&k[d..])).count();
    let best = depths
        .iter()
        .copied()
        .max_by_key(|&d| (matches(d), std::cmp::Reverse(d)))
        .unwrap_or(0);
    if best == 0 {
        return sd;
    }
    sd.into_iter()
        .map(|(k, t)| (k[best..].to_string(), t))
        .collect()
}

/// Binds `sd` to `graph`: on success every node with a module holds its parameters (shared by
/// every call of that module).
pub fn bind(mut graph: Graph, sd: StateDict) -> Result<Graph, BindError> {
    let expected = expected_keys(&graph);
    let expected_set: BTreeSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    let mut sd = strip_wrappers(sd, &expected_set);
    sd.retain(|k, _| !is_ignored(k));
    let mut err = BindError {
        model: graph.name.clone(),
        missing: Vec::new(),
        unexpected: sd
            .keys()
            .filter(|k| !expected_set.contains(k.as_str()))
            .cloned()
            .collect(),
        mismatched: Vec::new(),
    };
    for (key, shape) in &expected {
        match sd.get(key) {
            None => {
                let c = closest(key, sd.keys().map(String::as_str)).map(str::to_string);
                err.missing.push((key.clone(), c));
            }
            Some(t) if t.shape != *shape || t.data.len() != super::numel(shape) => {
                err.mismatched
                    .push((key.clone(), t.shape.clone(), shape.clone()));
            }
            Some(_) => {}
        }
    }
    if !(err.missing.is_empty() && err.unexpected.is_empty() && err.mismatched.is_empty()) {
        return Err(err);
    }
    let mut first_call: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for i in 0..graph.nodes.len() {
        let Some(module) = graph.nodes[i].module.clone() else {
            continue;
        };
        let params = match first_call.get(&module) {
            Some(&j) => graph.nodes[j].params.clone(),
            None => {
                first_call.insert(module.clone(), i);
                let suffixes = graph.nodes[i].op.params();
                let mut params = Vec::with_capacity(suffixes.len());
                for (suffix, _) in suffixes {
                    // Present: every expected key was checked above.
                    if let Some(t) = sd.remove(&format!("{module}.{suffix}")) {
                        params.push(t);
                    }
                }
                params
            }
        };
        graph.nodes[i].params = params;
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::{closest_within, edit_distance};

    /// Every candidate tried, the first on ties: what the pruned search must find.
    fn every_key<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
        candidates
            .iter()
            .copied()
            .min_by_key(|c| edit_distance(name, c))
    }

    #[test]
    fn pruning_by_length_finds_the_key_trying_every_key_finds() {
        // Seeded pseudo-random words over three letters: many ties and near misses.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let word = |next: &mut dyn FnMut() -> u64| {
            let n = next() % 10;
            (0..n)
                .map(|_| char::from(b'a' + (next() % 3) as u8))
                .collect::<String>()
        };
        for _ in 0..500 {
            let name = word(&mut next);
            let count = 1 + next() % 12;
            let keys: Vec<String> = (0..count).map(|_| word(&mut next)).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let (found, _) = closest_within(&name, keys.iter().copied(), usize::MAX);
            assert_eq!(found, every_key(&name, &keys), "{name:?} among {keys:?}");
        }
    }

    #[test]
    fn the_search_stops_within_its_budget() {
        // Keys as long as the name, so that none is pruned: every one costs a full table.
        let tail = "x".repeat(40);
        let keys: Vec<String> = (0..10_000).map(|i| format!("layer{i:05}.{tail}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let name = format!("layer00000.{}", "y".repeat(40));
        let budget = 1_000_000;
        let (found, spent) = closest_within(&name, keys.iter().copied(), budget);
        assert!(found.is_some());
        assert!(spent <= budget, "spent {spent} over a budget of {budget}");
        let (_, unbounded) = closest_within(&name, keys.iter().copied(), usize::MAX);
        assert!(
            unbounded > 10 * budget,
            "the test should need the budget: {unbounded}"
        );
    }
}
