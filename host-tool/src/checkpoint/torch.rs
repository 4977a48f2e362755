//! From an unpickled heap to the selected state_dict: what torch's objects mean.
//!
//! In: the [`Heap`] and root of a torch object pickle, an optional `--key` path, and a way to fetch a
//! storage's bytes by key. Out: the named tensors of the selected state_dict, in its order, and the
//! module classes met on the way.
//!
//! Selection: with a key, follow it (dotted path through nested dicts; a key that itself contains dots
//! is matched whole first). Without one: the root if it is a state_dict (a dict of tensors) or a module;
//! else the first of [`PREFERRED_KEYS`] that holds one, looking one level deeper into nested dicts.
//! A module (full-model pickle) is walked like `Module.state_dict()`: each module's `_parameters`, then
//! its persistent `_buffers`, then its `_modules`, depth first — with a depth limit that also stops cycles.

use super::error::{Error, Result};
use super::globals::{Known, Verdict};
use super::pickle::{Heap, Obj, ObjId};
use super::tensor::{self, Dtype, Storage, Tensor, View};

/// Keys under which checkpoints commonly keep their weights, in the order they are tried.
pub const PREFERRED_KEYS: &[&str] = &[
    "state_dict",
    "model_state_dict",
    "model_state",
    "model",
    "net",
    "network",
    "module",
    "weights",
    "params",
    "ema",
];

/// Deepest module tree walked (also what stops a module that contains itself).
const MAX_MODULE_DEPTH: usize = 256;
/// Most modules visited (a tree with shared submodules could otherwise blow up).
const MAX_MODULES: usize = 1 << 20;
/// Most dict items examined while walking a module tree. A module shared under several names is
/// walked once per name, like `Module.state_dict()` does, so a small pickle can multiply its items.
const MAX_WALK_ITEMS: usize = 1 << 22;
/// Most bytes of dotted names built while walking a module tree (long names repeated at every depth).
const MAX_WALK_NAME_BYTES: usize = 64 << 20;

/// What was selected.
#[derive(Debug)]
pub(crate) struct Selection {
    /// The key path chosen (`None` = the root object).
    pub key: Option<String>,
    /// Tensors by name, in state_dict order.
    pub entries: Vec<(String, ObjId)>,
    /// Classes of the modules walked, sorted, deduplicated.
    pub classes: Vec<String>,
    /// Top-level entries next to the selected state_dict that hold training-only state, with
    /// what they hold: `("optimizer", "optimizer state")`.
    pub training_state: Vec<(String, &'static str)>,
}

/// What a top-level entry named `key` holds, when its name says training-only state (optimizer,
/// gradient scaler, learning-rate scheduler: what a training loop saves to resume).
pub(crate) fn training_state_kind(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    if k.contains("optim") {
        Some("optimizer state")
    } else if k.contains("scaler") || k == "amp" || k.contains("amp_scaling") {
        Some("gradient scaler")
    } else if k.contains("sched") {
        Some("learning-rate scheduler")
    } else {
        None
    }
}

/// A storage as a persistent id names it.
#[derive(Debug, Clone)]
pub(crate) struct StorageId {
    pub key: String,
    /// torch's dtype name of the storage's elements.
    pub dtype: &'static str,
}

/// Element size of a torch dtype name (also the ones nnblob refuses, so sizes can be checked).
pub(crate) fn dtype_size(name: &str) -> u64 {
    match name {
        "float64" | "int64" | "uint64" | "complex64" | "qint32" => 8,
        "complex128" => 16,
        "float32" | "int32" | "uint32" | "complex32" => 4,
        "float16" | "bfloat16" | "int16" | "uint16" => 2,
        _ => 1,
    }
}

/// Parse a persistent id `('storage', storage_type, key, location, numel[, view_metadata])`.
pub(crate) fn storage_id(heap: &Heap, pid: ObjId) -> Result<StorageId> {
    let bad = |what: &str| Error::malformed("persistent id", what.to_owned());
    let Obj::PersistentId(tuple) = heap.get(pid) else {
        return Err(bad("a tensor's storage is not a persistent id"));
    };
    let items = heap.seq(*tuple).ok_or_else(|| bad("not a tuple"))?;
    if items.len() < 5 || heap.str(items[0]) != Some("storage") {
        return Err(bad("not a ('storage', type, key, location, numel) tuple"));
    }
    let dtype = match heap.global_of(items[1]).map(|g| g.verdict) {
        Some(Verdict::Known(Known::Storage(d))) => d,
        _ => return Err(bad("storage type is not a torch storage class")),
    };
    let key = match heap.get(items[2]) {
        Obj::Str(s) => s.clone(),
        Obj::Int(i) => i.to_string(),
        _ => return Err(bad("storage key is not a string")),
    };
    if key.is_empty() || key.contains('/') || key.contains("..") {
        return Err(bad("storage key is empty or contains a path"));
    }
    if heap.int(items[4]).is_none_or(|n| n < 0) {
        return Err(bad("storage element count is not a non-negative int"));
    }
    if items.len() > 5 && !matches!(heap.get(items[5]), Obj::None) {
        return Err(Error::UnsupportedTensor {
            tensor: format!("on storage {key}"),
            what: "storage-view (pre-1.0 view_metadata)".into(),
        });
    }
    Ok(StorageId { key, dtype })
}

/// Every storage the heap names, in first-use order (for the legacy format's size table).
pub(crate) fn all_storages(heap: &Heap) -> Vec<StorageId> {
    let mut out: Vec<StorageId> = Vec::new();
    for i in 0..heap.len() {
        let id = ObjId::from_index(i);
        if let Obj::PersistentId(_) = heap.get(id) {
            if let Ok(s) = storage_id(heap, id) {
                if !out.iter().any(|o| o.key == s.key) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Choose the state_dict: by `key`, or automatically.
pub(crate) fn select(heap: &Heap, root: ObjId, key: Option<&str>) -> Result<Selection> {
    let (key, chosen) = match key {
        Some(k) => (Some(k.to_owned()), follow(heap, root, k)?),
        None => auto(heap, root)?,
    };
    let mut classes = Vec::new();
    let entries = if is_module(heap, chosen) {
        walk_modules(heap, chosen, &mut classes)?
    } else {
        dict_tensors(heap, chosen, key.as_deref())?
    };
    classes.sort();
    classes.dedup();
    let training_state = match (&key, heap.get(root)) {
        (Some(_), Obj::Dict(d)) => heap
            .dict_items(&d.items)
            .iter()
            .filter_map(|(k, _)| {
                let k = heap.str(*k)?;
                training_state_kind(k).map(|kind| (k.to_owned(), kind))
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Selection {
        key,
        entries,
        classes,
        training_state,
    })
}

fn keys_of(heap: &Heap, dict: ObjId) -> String {
    let items = match heap.get(dict) {
        Obj::Dict(d) => &d.items,
        Obj::Object(o) => &o.items,
        _ => return String::new(),
    };
    let names: Vec<String> = heap
        .dict_items(items)
        .iter()
        .take(20)
        .map(|(k, _)| {
            heap.str(*k)
                .map_or_else(|| format!("<{}>", heap.describe(*k)), str::to_owned)
        })
        .collect();
    names.join(", ")
}

fn follow(heap: &Heap, root: ObjId, path: &str) -> Result<ObjId> {
    let mut at = root;
    let mut rest = path;
    let mut walked = String::new();
    loop {
        if let Some(v) = heap.lookup(at, rest) {
            return Ok(v);
        }
        let (head, tail) = rest.split_once('.').unwrap_or((rest, ""));
        let Some(v) = heap.lookup(at, head) else {
            let place = if walked.is_empty() {
                "the top-level object".to_owned()
            } else {
                format!("{walked:?}")
            };
            return Err(Error::NoStateDict {
                what: format!(
                    "key {path:?}: {place} ({}) has no key {head:?}; its keys: {}",
                    heap.describe(at),
                    keys_of(heap, at)
                ),
            });
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(head);
        if tail.is_empty() {
            return Ok(v);
        }
        at = v;
        rest = tail;
    }
}

fn is_module(heap: &Heap, id: ObjId) -> bool {
    let Obj::Object(o) = heap.get(id) else {
        return false;
    };
    o.state.is_some_and(|s| {
        heap.lookup(s, "_modules").is_some() || heap.lookup(s, "_parameters").is_some()
    })
}

fn is_tensor(heap: &Heap, id: ObjId) -> bool {
    matches!(heap.get(id), Obj::Tensor(_) | Obj::Unsupported(_))
}

/// A dict is a state_dict if every value is a tensor (an empty dict counts at the top level).
fn is_state_dict(heap: &Heap, id: ObjId, allow_empty: bool) -> bool {
    let Obj::Dict(d) = heap.get(id) else {
        return false;
    };
    if d.items.is_empty() {
        return allow_empty;
    }
    d.items
        .iter()
        .all(|&(k, v)| heap.str(k).is_some() && (is_tensor(heap, v) || is_extra_state(heap, k)))
}

fn is_extra_state(heap: &Heap, key: ObjId) -> bool {
    heap.str(key)
        .is_some_and(|k| k == "_extra_state" || k.ends_with("._extra_state"))
}

fn auto(heap: &Heap, root: ObjId) -> Result<(Option<String>, ObjId)> {
    if is_module(heap, root) || is_state_dict(heap, root, true) {
        return Ok((None, root));
    }
    let candidate = |id: ObjId| is_module(heap, id) || is_state_dict(heap, id, false);
    for k in PREFERRED_KEYS {
        if let Some(v) = heap.lookup(root, k) {
            if candidate(v) {
                return Ok((Some((*k).to_owned()), v));
            }
        }
    }
    for k in PREFERRED_KEYS {
        if let Some(v) = heap.lookup(root, k) {
            for k2 in PREFERRED_KEYS {
                if let Some(v2) = heap.lookup(v, k2) {
                    if candidate(v2) {
                        return Ok((Some(format!("{k}.{k2}")), v2));
                    }
                }
            }
        }
    }
    Err(Error::NoStateDict {
        what: format!(
            "no state_dict found: the top-level object is a {} with keys: {}; choose one with --key",
            heap.describe(root),
            keys_of(heap, root)
        ),
    })
}

fn dict_tensors(heap: &Heap, id: ObjId, key: Option<&str>) -> Result<Vec<(String, ObjId)>> {
    let place = key.map_or_else(
        || "the top-level object".to_owned(),
        |k| format!("key {k:?}"),
    );
    let Obj::Dict(d) = heap.get(id) else {
        return Err(Error::NoStateDict {
            what: format!(
                "{place} is a {}, not a state_dict (a dict of tensors)",
                heap.describe(id)
            ),
        });
    };
    let mut out = Vec::new();
    for (k, v) in heap.dict_items(&d.items) {
        let Some(name) = heap.str(k) else {
            return Err(Error::NoStateDict {
                what: format!(
                    "{place} has a {} key; a state_dict's keys are strings",
                    heap.describe(k)
                ),
            });
        };
        if is_tensor(heap, v) {
            out.push((name.to_owned(), v));
        } else if !is_extra_state(heap, k) {
            return Err(Error::NoStateDict {
                what: format!(
                    "{place} is not a state_dict: its value {name:?} is a {}, not a tensor",
                    heap.describe(v)
                ),
            });
        }
    }
    Ok(out)
}

/// Walk a module tree like `Module.state_dict()`, iteratively.
fn walk_modules(
    heap: &Heap,
    root: ObjId,
    classes: &mut Vec<String>,
) -> Result<Vec<(String, ObjId)>> {
    let mut out = Vec::new();
    let mut todo: Vec<(ObjId, String, usize)> = vec![(root, String::new(), 0)];
    let mut visited = 0usize;
    let mut items = 0usize;
    let mut name_bytes = 0usize;
    let mut spend = |n_items: usize, n_bytes: usize| -> Result<()> {
        items = items.saturating_add(n_items);
        name_bytes = name_bytes.saturating_add(n_bytes);
        if items > MAX_WALK_ITEMS || name_bytes > MAX_WALK_NAME_BYTES {
            return Err(Error::too_large(format!(
                "the module tree expands to more than {MAX_WALK_ITEMS} entries or {MAX_WALK_NAME_BYTES} \
                 bytes of names (modules shared under many names)"
            )));
        }
        Ok(())
    };
    while let Some((module, prefix, depth)) = todo.pop() {
        if depth > MAX_MODULE_DEPTH {
            return Err(Error::TooDeep {
                entry: format!("module tree at {prefix:?}"),
                offset: 0,
                limit: MAX_MODULE_DEPTH,
            });
        }
        visited += 1;
        if visited > MAX_MODULES {
            return Err(Error::too_large(format!(
                "more than {MAX_MODULES} modules in the module tree"
            )));
        }
        let Obj::Object(o) = heap.get(module) else {
            continue;
        };
        classes.push(heap.globals[o.class].qualified());
        let Some(state) = o.state else { continue };
        if let Obj::Dict(d) = heap.get(state) {
            spend(d.items.len(), 0)?;
        }
        let non_persistent: Vec<&str> = heap
            .lookup(state, "_non_persistent_buffers_set")
            .map(|s| match heap.get(s) {
                Obj::Set(v) | Obj::List(v) | Obj::Tuple(v) => {
                    v.iter().filter_map(|&i| heap.str(i)).collect()
                }
                _ => Vec::new(),
            })
            .unwrap_or_default();
        spend(non_persistent.len(), 0)?;
        for (field, skip) in [("_parameters", &[][..]), ("_buffers", &non_persistent[..])] {
            let Some(d) = heap.lookup(state, field) else {
                continue;
            };
            let Obj::Dict(d) = heap.get(d) else { continue };
            spend(d.items.len().saturating_mul(skip.len().max(1)), 0)?;
            for (k, v) in heap.dict_items(&d.items) {
                let Some(name) = heap.str(k) else { continue };
                if skip.contains(&name) || matches!(heap.get(v), Obj::None) {
                    continue;
                }
                if !is_tensor(heap, v) {
                    return Err(Error::malformed(
                        format!("module {prefix:?}"),
                        format!(
                            "{field} entry {name:?} is a {}, not a tensor",
                            heap.describe(v)
                        ),
                    ));
                }
                spend(0, prefix.len() + name.len())?;
                out.push((format!("{prefix}{name}"), v));
            }
        }
        if let Some(children) = heap.lookup(state, "_modules") {
            if let Obj::Dict(d) = heap.get(children) {
                spend(d.items.len(), 0)?;
                for (k, v) in heap.dict_items(&d.items).into_iter().rev() {
                    let Some(name) = heap.str(k) else { continue };
                    if matches!(heap.get(v), Obj::None) {
                        continue;
                    }
                    spend(0, prefix.len() + name.len() + 1)?;
                    todo.push((v, format!("{prefix}{name}."), depth + 1));
                }
            }
        }
    }
    Ok(out)
}

/// Materialise one selected tensor. `fetch` returns a storage's bytes by its id.
pub(crate) fn build_tensor(
    heap: &Heap,
    name: &str,
    id: ObjId,
    fetch: &mut dyn FnMut(&StorageId) -> Result<Storage>,
) -> Result<Tensor> {
    let t = match heap.get(id) {
        Obj::Tensor(t) => t,
        Obj::Unsupported(what) => {
            return Err(Error::UnsupportedTensor {
                tensor: name.to_owned(),
                what: (*what).to_owned(),
            })
        }
        _ => {
            return Err(Error::malformed(
                name,
                format!("{} is not a tensor", heap.describe(id)),
            ))
        }
    };
    let sid = storage_id(heap, t.storage)?;
    let dtype_name = t.dtype.unwrap_or(sid.dtype);
    let dtype = Dtype::from_torch(dtype_name).ok_or_else(|| Error::UnsupportedDtype {
        tensor: name.to_owned(),
        dtype: dtype_name.to_owned(),
    })?;
    let storage = fetch(&sid)?;
    let view = View {
        name,
        dtype,
        size: &t.size,
        stride: &t.stride,
        storage_offset: t.storage_offset,
        storage_key: &sid.key,
    };
    tensor::materialise(&view, &storage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::pickle::{unpickle, Limits, Mode};

    /// A pickle writer for module trees: every value is memoized under a caller-chosen LONG_BINPUT key.
    struct P(Vec<u8>);

    impl P {
        fn str(&mut self, s: &str) -> &mut Self {
            self.0.push(b'X');
            self.0.extend((s.len() as u32).to_le_bytes());
            self.0.extend(s.as_bytes());
            self
        }
        fn put(&mut self, key: u32) -> &mut Self {
            self.0.push(b'r');
            self.0.extend(key.to_le_bytes());
            self
        }
        fn get(&mut self, key: u32) -> &mut Self {
            self.0.push(b'j');
            self.0.extend(key.to_le_bytes());
            self
        }
        fn op(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend(b);
            self
        }
    }

    const TENSOR: u32 = 1_000_000;
    const CLASS: u32 = 1_000_001;

    /// Protocol 2 header, one 1-element f32 tensor memoized as TENSOR and the class `__main__.M` as CLASS.
    fn preamble() -> P {
        let mut p = P(b"\x80\x02".to_vec());
        p.op(b"ctorch._utils\n_rebuild_tensor_v2\n((")
            .str("storage")
            .op(b"ctorch\nFloatStorage\n")
            .str("0")
            .str("cpu")
            .op(b"K\x01tQK\x00(K\x01t(K\x01t\x89}tR")
            .put(TENSOR)
            .op(b"0c__main__\nM\n")
            .put(CLASS)
            .op(b"0");
        p
    }

    /// A module object left on the stack: `params` name the TENSOR, `children` name memo keys,
    /// `padding` extra raw items in its `__dict__`.
    fn module(p: &mut P, params: &[&str], children: &[(u32, u32)], padding: usize) {
        p.get(CLASS).op(b")\x81}(").str("_parameters").op(b"}(");
        for name in params {
            p.str(name).get(TENSOR);
        }
        p.op(b"u").str("_modules").op(b"}(");
        for &(name, child) in children {
            p.get(name).get(child);
        }
        p.op(b"u");
        for _ in 0..padding {
            p.str("pad").op(b"N");
        }
        p.op(b"ub");
    }

    fn select_module_tree(p: P) -> Result<Selection> {
        let mut bytes = p.0;
        bytes.push(b'.');
        let u = unpickle(&bytes, "test.pkl", Mode::Strict, &Limits::default()).unwrap();
        select(&u.heap, u.root, None)
    }

    #[test]
    fn a_module_shared_under_many_names_is_bounded() {
        // Each level holds the one below twice: 2^16 leaves, each with 64 items in its __dict__.
        let mut p = preamble();
        p.str("a")
            .put(2_000_000)
            .op(b"0")
            .str("b")
            .put(2_000_001)
            .op(b"0");
        module(&mut p, &["w"], &[], 64);
        for level in 1..=16 {
            p.put(level - 1).op(b"0");
            module(
                &mut p,
                &[],
                &[(2_000_000, level - 1), (2_000_001, level - 1)],
                0,
            );
        }
        let e = select_module_tree(p).unwrap_err();
        assert_eq!(e.kind(), "too-large", "{e}");
    }

    #[test]
    fn long_module_names_repeated_at_every_depth_are_bounded() {
        // A chain of 12 modules, each child named by the same memoized 1 MiB string: 78 MiB of names.
        let mut p = preamble();
        p.str(&"n".repeat(1 << 20)).put(2_000_000).op(b"0");
        module(&mut p, &["w"], &[], 0);
        for level in 1..=12 {
            p.put(level - 1).op(b"0");
            module(&mut p, &[], &[(2_000_000, level - 1)], 0);
        }
        let e = select_module_tree(p).unwrap_err();
        assert_eq!(e.kind(), "too-large", "{e}");
    }
}
