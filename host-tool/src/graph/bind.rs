//! Binding a state_dict to a graph, strictly, like `load_state_dict(strict=True)`.
//!
//! In: an unbound [`Graph`] and a [`StateDict`]. Out: the graph with every node's parameters, or a
//! [`BindError`] listing, all at once, the missing keys (each with the closest key the checkpoint
//! has, and one line for many keys missing under one prefix the checkpoint spells otherwise), the
//! unexpected keys and the shape mismatches. `num_batches_tracked` is ignored; a
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
    /// Missing keys that the checkpoint has under another prefix, one finding per prefix.
    pub renamed: Vec<PrefixRename>,
}

/// Several missing keys that differ from checkpoint keys by one prefix only: the spec's `s1_`
/// where the checkpoint has `stack1.` (`s1_conv1.weight` / `stack1.conv1.weight`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixRename {
    /// The prefix of the expected keys (may be empty).
    pub expected: String,
    /// The prefix the checkpoint has instead (may be empty).
    pub found: String,
    /// How many missing keys it explains.
    pub count: usize,
    /// Whether every expected key under `expected` is missing.
    pub all: bool,
    /// One of them: (expected key, checkpoint key).
    pub example: (String, String),
}

impl fmt::Display for PrefixRename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let under = |p: &str| {
            if p.is_empty() {
                String::new()
            } else {
                format!(" under '{p}'")
            }
        };
        if self.all {
            write!(f, "every key{} is missing", under(&self.expected))?;
        } else {
            write!(
                f,
                "{} keys{} are missing",
                self.count,
                under(&self.expected)
            )?;
        }
        let found = if self.found.is_empty() {
            "without that prefix".to_string()
        } else {
            format!("under '{}'", self.found)
        };
        write!(
            f,
            "; the checkpoint has them {found} (\"{}\" for \"{}\"): rename the modules in the spec, or the keys",
            self.example.1, self.example.0
        )
    }
}

impl std::error::Error for BindError {}

impl fmt::Display for BindError {
    /// PyTorch's wording, one finding per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error(s) in loading state_dict for {}:", self.model)?;
        if !self.missing.is_empty() {
            write!(f, "\n    Missing key(s) in state_dict:")?;
            for (key, closest) in &self.missing {
                let explained = closest
                    .as_deref()
                    .and_then(|c| prefix_split(key, c))
                    .is_some_and(|(p, q)| {
                        self.renamed.iter().any(|r| r.expected == p && r.found == q)
                    });
                match closest.as_ref().filter(|_| !explained) {
                    Some(c) => write!(
                        f,
                        "\n        \"{key}\" (closest in the checkpoint: \"{c}\")"
                    )?,
                    None => write!(f, "\n        \"{key}\"")?,
                }
            }
            for r in &self.renamed {
                write!(f, "\n    {r}")?;
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

/// Character comparisons [`closest`] and [`closest_key`] spend at most on one name (a hostile
/// checkpoint may hold millions of long keys; the hint is a convenience, not worth minutes).
const CLOSEST_BUDGET: usize = 50_000_000;

/// The candidate nearest to `name` by edit distance (the first on ties), among those examined
/// within [`CLOSEST_BUDGET`] character comparisons: every candidate of an ordinary checkpoint.
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    closest_within(name, candidates, CLOSEST_BUDGET).0
}

/// [`closest`] with a budget of character comparisons; also returns the comparisons spent.
/// A candidate whose length differs from `name`'s by more than the best distance so far cannot
/// beat it (the distance is at least the length difference) and costs nothing.
fn closest_within<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    budget: usize,
) -> (Option<&'c str>, usize) {
    let len = name.chars().count();
    nearest_within(
        candidates,
        budget,
        |c| len.saturating_mul(c.chars().count()),
        |c| len.abs_diff(c.chars().count()) as f64,
        |c| (edit_distance(name, c) as f64, 0),
    )
}

/// The state_dict key nearest to `key`, reading keys as their components (split at `.` and
/// `_`, [`component_distance`]), then by edit distance; the first on ties, within
/// [`CLOSEST_BUDGET`]. Keys that share their last components win: `stack1.conv1.weight` for
/// `s1_conv1.weight` (rather than `conv1.weight`, nearer by characters), `fc.weights` for
/// `fc.weight`.
pub fn closest_key<'c>(
    key: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    closest_key_within(key, candidates, CLOSEST_BUDGET).0
}

/// [`closest_key`] with a budget of character comparisons. A candidate whose number of
/// components differs from `key`'s by more than the best distance so far cannot beat it (each
/// component inserted or deleted costs 1) and costs nothing.
fn closest_key_within<'c>(
    key: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    budget: usize,
) -> (Option<&'c str>, usize) {
    let parts = components(key);
    let len = key.chars().count();
    nearest_within(
        candidates,
        budget,
        |c| len.saturating_mul(c.chars().count()).saturating_mul(2),
        |c| parts.len().abs_diff(components(c).len()) as f64,
        |c| {
            (
                component_distance(&parts, &components(c)),
                edit_distance(key, c),
            )
        },
    )
}

/// The candidate with the smallest `score` (the first on ties), skipping those whose `bound` (a
/// lower bound of the score's first part) exceeds the best so far, and stopping once `cost`
/// (character comparisons) would pass `budget`; also returns the comparisons spent.
fn nearest_within<'c>(
    candidates: impl IntoIterator<Item = &'c str>,
    budget: usize,
    cost: impl Fn(&str) -> usize,
    bound: impl Fn(&str) -> f64,
    score: impl Fn(&str) -> (f64, usize),
) -> (Option<&'c str>, usize) {
    // Scores closer than this are equal (sums of ratios rounded differently).
    const TIE: f64 = 1e-9;
    let mut best: Option<(&str, (f64, usize))> = None;
    let mut spent = 0usize;
    for c in candidates {
        if best.is_some_and(|(_, (d, _))| bound(c) > d + TIE) {
            continue;
        }
        let cost = cost(c);
        if best.is_some() && spent.saturating_add(cost) > budget {
            break;
        }
        spent = spent.saturating_add(cost);
        let (d, tie_break) = score(c);
        let better = match best {
            None => true,
            Some((_, (bd, bt))) => d < bd - TIE || (d <= bd + TIE && tie_break < bt),
        };
        if better {
            best = Some((c, (d, tie_break)));
        }
    }
    (best.map(|(c, _)| c), spent)
}

/// The components of a key, split at `.` and `_`: `s1_conv1.weight` → `s1`, `conv1`, `weight`.
fn components(key: &str) -> Vec<&str> {
    key.split(['.', '_']).collect()
}

/// Edit distance over components: inserting or deleting one costs 1, replacing one by another
/// their edit distance over the longer one's length (0 to 1).
fn component_distance(a: &[&str], b: &[&str]) -> f64 {
    let mut row: Vec<f64> = (0..=b.len()).map(|j| j as f64).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = (i + 1) as f64;
        for (j, y) in b.iter().enumerate() {
            let longer = x.chars().count().max(y.chars().count()).max(1);
            let replace = edit_distance(x, y) as f64 / longer as f64;
            let next = (diag + replace).min(row[j] + 1.0).min(row[j + 1] + 1.0);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `(p, q)` when `missing = p + rest` and `found = q + rest`, `rest` the longest common end
/// that starts a component in both (`s1_conv1.weight`, `stack1.conv1.weight` → `s1_`, `stack1.`).
fn prefix_split<'k>(missing: &'k str, found: &'k str) -> Option<(&'k str, &'k str)> {
    let common = missing
        .bytes()
        .rev()
        .zip(found.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let starts_component = |s: &str, at: usize| at == 0 || s[..at].ends_with(['.', '_']);
    (1..=common).rev().find_map(|n| {
        let (i, j) = (missing.len() - n, found.len() - n);
        let ok = missing.is_char_boundary(i)
            && found.is_char_boundary(j)
            && starts_component(missing, i)
            && starts_component(found, j)
            && (i, j) != (0, 0);
        ok.then(|| (&missing[..i], &found[..j]))
    })
}

/// Groups of at least two missing keys whose closest checkpoint key differs by the same prefix
/// only, in the order of the first key of each.
fn prefix_renames(
    missing: &[(String, Option<String>)],
    expected: &[(String, Vec<usize>)],
) -> Vec<PrefixRename> {
    let mut out: Vec<PrefixRename> = Vec::new();
    for (key, closest) in missing {
        let Some((p, q)) = closest.as_deref().and_then(|c| prefix_split(key, c)) else {
            continue;
        };
        match out.iter_mut().find(|r| r.expected == p && r.found == q) {
            Some(r) => r.count += 1,
            None => out.push(PrefixRename {
                expected: p.to_string(),
                found: q.to_string(),
                count: 1,
                all: false,
                example: (key.clone(), closest.clone().unwrap_or_default()),
            }),
        }
    }
    out.retain(|r| r.count >= 2);
    for r in &mut out {
        let under = expected
            .iter()
            .filter(|(k, _)| k.starts_with(&r.expected))
            .count();
        r.all = under == r.count;
    }
    out
}

/// Every state_dict key the graph expects, with its shape, in node order.
pub fn expected_keys(graph: &Graph) -> Vec<(String, Vec<usize>)> {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::new();
    for n in &graph.nodes {
        let Some(module) = &n.module else { continue };
        if !seen.insert(params_id(module, &n.op)) {
            continue;
        }
        for (suffix, shape) in n.op.params() {
            keys.push((format!("{module}.{suffix}"), shape));
        }
    }
    keys
}

/// What names a node's parameters: its module and its first suffix. A module called twice
/// shares them; the layers of a GRU or LSTM, one module, each have their own
/// (`weight_ih_l0`, `weight_ih_l1`, ...).
fn params_id(module: &str, op: &crate::graph::Op) -> (String, &'static str) {
    let first = op.params().first().map_or("", |p| p.0);
    (module.to_string(), first)
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
        renamed: Vec::new(),
    };
    for (key, shape) in &expected {
        match sd.get(key) {
            None => {
                let c = closest_key(key, sd.keys().map(String::as_str)).map(str::to_string);
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
        err.renamed = prefix_renames(&err.missing, &expected);
        return Err(err);
    }
    let mut first_call: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for i in 0..graph.nodes.len() {
        let Some(module) = graph.nodes[i].module.clone() else {
            continue;
        };
        let id = params_id(&module, &graph.nodes[i].op);
        let params = match first_call.get(&id) {
            Some(&j) => graph.nodes[j].params.clone(),
            None => {
                first_call.insert(id, i);
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
    use super::{
        closest_key_within, closest_within, component_distance, components, edit_distance,
    };

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
    fn pruning_by_component_count_finds_the_key_trying_every_key_finds() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Keys of one to four components over few letters, separated by `.` or `_`.
        let key = |next: &mut dyn FnMut() -> u64| {
            let n = 1 + next() % 4;
            let parts: Vec<String> = (0..n)
                .map(|_| {
                    let len = 1 + next() % 3;
                    (0..len)
                        .map(|_| char::from(b'a' + (next() % 3) as u8))
                        .collect()
                })
                .collect();
            let sep = if next() % 2 == 0 { "." } else { "_" };
            parts.join(sep)
        };
        for _ in 0..500 {
            let name = key(&mut next);
            let count = 1 + next() % 12;
            let keys: Vec<String> = (0..count).map(|_| key(&mut next)).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let score = |c: &str| {
                (
                    component_distance(&components(&name), &components(c)),
                    edit_distance(&name, c),
                )
            };
            let mut want: Option<(&str, (f64, usize))> = None;
            for &c in &keys {
                let (d, e) = score(c);
                if want.is_none_or(|(_, (bd, be))| d < bd - 1e-9 || (d <= bd + 1e-9 && e < be)) {
                    want = Some((c, (d, e)));
                }
            }
            let (found, _) = closest_key_within(&name, keys.iter().copied(), usize::MAX);
            assert_eq!(found, want.map(|(c, _)| c), "{name:?} among {keys:?}");
        }
    }

    #[test]
    fn keys_sharing_their_last_components_are_nearer() {
        let near = |key: &str, keys: &[&'static str]| {
            closest_key_within(key, keys.iter().copied(), usize::MAX).0
        };
        let keys = ["conv1.weight", "stack1.conv1.weight", "stack1.conv2.weight"];
        assert_eq!(near("s1_conv1.weight", &keys), Some("stack1.conv1.weight"));
        let keys = ["conv1.weight", "fc.bias", "fc.weights"];
        assert_eq!(near("fc.weight", &keys), Some("fc.weights"));
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
        let (found, spent) = closest_key_within(&name, keys.iter().copied(), budget);
        assert!(found.is_some());
        assert!(spent <= budget, "spent {spent} over a budget of {budget}");
    }
}
