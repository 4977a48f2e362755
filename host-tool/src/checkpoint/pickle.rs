//! Our own unpickler: a small, iterative VM that builds an inert object heap.
//!
//! In: the bytes of one pickle (protocol 0–5; torch writes protocol 2 with a few protocol 3–5 opcodes
//! when asked). Out: a [`Heap`] of plain values addressed by [`ObjId`], the id of the pickle's root value,
//! every global the pickle named (with its [`Verdict`]) and, in [`Mode::Audit`], the findings.
//!
//! Nothing is imported or called. GLOBAL and STACK_GLOBAL resolve through [`globals::classify`];
//! REDUCE and NEWOBJ apply the reader's own interpretation of the few names torch uses (tensor rebuild
//! functions become [`TensorRef`] descriptions, `OrderedDict` a [`Dict`], module classes plain
//! [`Object`]s). Memo references share heap objects instead of copying them, so a value that doubles
//! through GET chains costs one slot, and APPEND/SETITEM after memoization is seen through every
//! reference, as in Python.
//!
//! Limits (see [`Limits`]): op count, object count, memo size, stack size, nesting depth and the
//! "expanded size" a value would have if its shared references were copied. Every length prefix is
//! checked against the remaining bytes before anything is allocated.

use std::collections::HashMap;

use super::error::{Error, Result};
use super::globals::{self, Known, Verdict};

/// The address of a value on the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjId(u32);

impl ObjId {
    /// The id of the `i`-th value allocated.
    pub(crate) fn from_index(i: usize) -> ObjId {
        ObjId(i as u32)
    }
}

/// A plain value built by the VM.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    /// Python `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// A larger int, little-endian two's complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<ObjId>),
    /// A list.
    List(Vec<ObjId>),
    /// A dict or OrderedDict.
    Dict(Box<Dict>),
    /// A set or frozenset.
    Set(Vec<ObjId>),
    /// A global, by index into [`Heap::globals`].
    Global(usize),
    /// An inert instance of a class (a module in a full-model pickle, a dict subclass, ...).
    Object(Box<Object>),
    /// A persistent id (`BINPERSID`): in torch files, the tuple that names a storage.
    PersistentId(ObjId),
    /// A tensor description from a rebuild function.
    Tensor(Box<TensorRef>),
    /// A harmless value the reader does not model (a device, a numpy scalar, an audited refusal).
    Opaque,
    /// A tensor kind nnblob does not handle, with its name; refused only if selected.
    Unsupported(&'static str),
}

/// A dict: items in insertion order (later duplicates win when read), and the attributes BUILD set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dict {
    /// Key/value pairs in the order SETITEM(S) added them.
    pub items: Vec<(ObjId, ObjId)>,
    /// The state a BUILD gave the dict (an `OrderedDict`'s `_metadata`).
    pub attrs: Option<ObjId>,
}

/// An inert object of a class the pickle names.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Index into [`Heap::globals`] of its class.
    pub class: usize,
    /// The state BUILD gave it (usually its `__dict__`).
    pub state: Option<ObjId>,
    /// Items SETITEM(S) added (dict subclasses).
    pub items: Vec<(ObjId, ObjId)>,
    /// Items APPEND(S) added (list subclasses).
    pub list: Vec<ObjId>,
}

/// A tensor as the rebuild functions describe it; the storage is resolved by the container layer.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The persistent id naming the storage (usually an [`Obj::PersistentId`]).
    pub storage: ObjId,
    /// Offset into the storage, in elements of the tensor's dtype.
    pub storage_offset: u64,
    /// The shape.
    pub size: Vec<u64>,
    /// The stride of each dimension, in elements.
    pub stride: Vec<u64>,
    /// The dtype given explicitly (`_rebuild_tensor_v3`); otherwise the storage's.
    pub dtype: Option<globals::DtypeName>,
}

/// A global the pickle named.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalUse {
    /// The module, as written.
    pub module: String,
    /// The name, as written.
    pub name: String,
    /// Byte offset of the GLOBAL / STACK_GLOBAL opcode.
    pub offset: u64,
    /// What the reader makes of it.
    pub verdict: Verdict,
}

impl GlobalUse {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A refusal recorded instead of raised ([`Mode::Audit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `module.name` of the global.
    pub global: String,
    /// Byte offset of its GLOBAL / STACK_GLOBAL opcode.
    pub offset: u64,
    /// Why it is refused.
    pub reason: String,
}

/// How refusals are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first refused global is an error (reading a checkpoint).
    Strict,
    /// Refused globals are recorded as [`Finding`]s and replaced by inert placeholders, so a scan can
    /// list all of them. Structural errors still stop the VM.
    Audit,
}

/// Resource limits. The defaults are far above any real torch file.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Opcodes executed.
    pub max_ops: u64,
    /// Values on the heap.
    pub max_objects: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Values on the stack at once.
    pub max_stack: usize,
    /// Nesting depth of containers (and open MARKs).
    pub max_depth: u32,
    /// Elements a value would have if shared references were copied (memo bombs).
    pub max_expanded: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: 64 << 20,
            max_objects: 8 << 20,
            max_memo: 8 << 20,
            max_stack: 1 << 20,
            max_depth: 1000,
            max_expanded: 100_000_000,
        }
    }
}

/// A length prefix larger than this that runs past the end is reported as too large, not as truncation.
const PLAUSIBLE_LENGTH: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    depth: u32,
    expanded: u64,
}

/// The values one pickle built.
#[derive(Debug, Default)]
pub struct Heap {
    objs: Vec<Obj>,
    meta: Vec<Meta>,
    /// Every global the pickle named, in pickle order (repeats included).
    pub globals: Vec<GlobalUse>,
    /// Refusals recorded in [`Mode::Audit`].
    pub findings: Vec<Finding>,
    /// In [`Mode::Audit`], the placeholders that stand for a class the pickle called (each with
    /// the index of its finding): what a reader may leave unbuilt when nothing it selects
    /// reaches them.
    pub called_classes: Vec<(ObjId, usize)>,
}

/// The reason a call of a class is refused.
pub const CLASS_CALLED: &str =
    "not a tensor or container type (a class may only name an inert object, never be called)";

impl Heap {
    /// The first class-call placeholder ([`Heap::called_classes`]) reachable from any of `roots`
    /// through containers, objects and tensors' storages, with its finding's index.
    pub fn called_class_under(&self, roots: &[ObjId]) -> Option<usize> {
        self.called_classes_from_each(roots)
            .into_iter()
            .flatten()
            .next()
    }

    /// For each of `roots` in turn, the first class-call placeholder its walk reaches, skipping
    /// what the walks of the roots before it visited: every value is visited once in all.
    pub fn called_classes_from_each(&self, roots: &[ObjId]) -> Vec<Option<usize>> {
        if self.called_classes.is_empty() {
            return vec![None; roots.len()];
        }
        let placeholders: HashMap<ObjId, usize> = self.called_classes.iter().copied().collect();
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::with_capacity(roots.len());
        for &root in roots {
            let mut todo = vec![root];
            let mut first = None;
            while let Some(at) = todo.pop() {
                if !seen.insert(at) {
                    continue;
                }
                if let Some(&finding) = placeholders.get(&at) {
                    first = first.or(Some(finding));
                }
                match self.get(at) {
                    Obj::Tuple(v) | Obj::List(v) | Obj::Set(v) => todo.extend(v),
                    Obj::Dict(d) => {
                        todo.extend(d.items.iter().flat_map(|&(k, v)| [k, v]));
                        todo.extend(d.attrs);
                    }
                    Obj::Object(o) => {
                        todo.extend(o.state);
                        todo.extend(o.items.iter().flat_map(|&(k, v)| [k, v]));
                        todo.extend(&o.list);
                    }
                    Obj::PersistentId(inner) => todo.push(*inner),
                    Obj::Tensor(t) => todo.push(t.storage),
                    _ => {}
                }
            }
            found.push(first);
        }
        found
    }

    /// Number of values on the heap (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// True if nothing was allocated.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// The value at `id`.
    pub fn get(&self, id: ObjId) -> &Obj {
        &self.objs[id.0 as usize]
    }

    /// The string at `id`, if it is one.
    pub fn str(&self, id: ObjId) -> Option<&str> {
        match self.get(id) {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The int at `id`, if it is one (bools count, as in Python).
    pub fn int(&self, id: ObjId) -> Option<i64> {
        match self.get(id) {
            Obj::Int(i) => Some(*i),
            Obj::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The elements of a tuple or list.
    pub fn seq(&self, id: ObjId) -> Option<&[ObjId]> {
        match self.get(id) {
            Obj::Tuple(v) | Obj::List(v) => Some(v),
            _ => None,
        }
    }

    /// The class `module.name` of an object or global at `id`.
    pub fn global_of(&self, id: ObjId) -> Option<&GlobalUse> {
        match self.get(id) {
            Obj::Global(g) => self.globals.get(*g),
            Obj::Object(o) => self.globals.get(o.class),
            _ => None,
        }
    }

    /// A dict's items with later duplicates of a string key replacing earlier ones (Python semantics),
    /// in first-insertion order. Non-string keys are kept as they are.
    pub fn dict_items(&self, items: &[(ObjId, ObjId)]) -> Vec<(ObjId, ObjId)> {
        let mut out: Vec<(ObjId, ObjId)> = Vec::with_capacity(items.len());
        let mut index: HashMap<&str, usize> = HashMap::new();
        for &(k, v) in items {
            if let Some(s) = self.str(k) {
                if let Some(&i) = index.get(s) {
                    out[i].1 = v;
                    continue;
                }
                index.insert(s, out.len());
            }
            out.push((k, v));
        }
        out
    }

    /// The value of string key `key` in a dict (or a dict-like object's items).
    pub fn lookup(&self, dict: ObjId, key: &str) -> Option<ObjId> {
        let items = match self.get(dict) {
            Obj::Dict(d) => &d.items,
            Obj::Object(o) => &o.items,
            _ => return None,
        };
        items
            .iter()
            .rev()
            .find(|(k, _)| self.str(*k) == Some(key))
            .map(|&(_, v)| v)
    }

    /// A short name for the kind of value at `id`, for messages.
    pub fn describe(&self, id: ObjId) -> String {
        match self.get(id) {
            Obj::None => "None".into(),
            Obj::Bool(_) => "bool".into(),
            Obj::Int(_) | Obj::BigInt(_) => "int".into(),
            Obj::Float(_) => "float".into(),
            Obj::Str(_) => "str".into(),
            Obj::Bytes(_) => "bytes".into(),
            Obj::Tuple(_) => "tuple".into(),
            Obj::List(_) => "list".into(),
            Obj::Dict(_) => "dict".into(),
            Obj::Set(_) => "set".into(),
            Obj::Global(g) => format!("global {}", self.globals[*g].qualified()),
            Obj::Object(o) => format!("object of class {}", self.globals[o.class].qualified()),
            Obj::PersistentId(_) => "persistent id".into(),
            Obj::Tensor(_) => "tensor".into(),
            Obj::Opaque => "opaque value".into(),
            Obj::Unsupported(what) => format!("{what} tensor"),
        }
    }
}

/// The outcome of running one pickle.
#[derive(Debug)]
pub struct Unpickled {
    /// The values.
    pub heap: Heap,
    /// The value STOP returned.
    pub root: ObjId,
    /// Bytes consumed, up to and including STOP.
    pub len: usize,
}

/// Run the pickle at the start of `data` until its STOP opcode. `entry` names it in messages.
pub fn unpickle(data: &[u8], entry: &str, mode: Mode, limits: &Limits) -> Result<Unpickled> {
    let mut vm = Vm {
        data,
        pos: 0,
        op_at: 0,
        entry,
        mode,
        limits,
        heap: Heap::default(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = vm.run()?;
    Ok(Unpickled {
        heap: vm.heap,
        root,
        len: vm.pos,
    })
}

/// How a callable is applied.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    /// REDUCE: `func(*args)`.
    Reduce,
    /// NEWOBJ / INST / OBJ: `cls.__new__(cls, *args)`.
    New,
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    entry: &'a str,
    mode: Mode,
    limits: &'a Limits,
    heap: Heap,
    stack: Vec<ObjId>,
    marks: Vec<usize>,
    memo: HashMap<u32, ObjId>,
}

impl Vm<'_> {
    fn run(&mut self) -> Result<ObjId> {
        let mut ops: u64 = 0;
        loop {
            ops += 1;
            if ops > self.limits.max_ops {
                return Err(
                    self.memo_limit(format!("more than {} pickle opcodes", self.limits.max_ops))
                );
            }
            self.op_at = self.pos;
            let op = self.take(1, "an opcode")?[0];
            if let Some(root) = self.step(op)? {
                return Ok(root);
            }
            if self.stack.len() > self.limits.max_stack {
                return Err(Error::too_large(format!(
                    "pickle stack deeper than {} values at byte {} of {}",
                    self.limits.max_stack, self.op_at, self.entry
                )));
            }
        }
    }

    /// Execute one opcode; `Some(root)` on STOP.
    fn step(&mut self, op: u8) -> Result<Option<ObjId>> {
        match op {
            b'.' => return self.pop().map(Some),
            // Framing and protocol markers carry no values.
            0x80 => {
                self.take(1, "PROTO")?;
            }
            0x95 => {
                let n = self.u64_le(8, "FRAME")?;
                self.check_len(n, "FRAME")?;
            }
            b'(' => {
                if self.marks.len() >= self.limits.max_depth as usize {
                    return Err(self.too_deep());
                }
                self.marks.push(self.stack.len());
            }
            b'0' => {
                if self.stack.len() > self.marks.last().copied().unwrap_or(0) {
                    self.pop()?;
                } else {
                    self.pop_mark()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?;
                self.stack.push(top);
            }
            b'N' => self.push_new(Obj::None)?,
            0x88 => self.push_new(Obj::Bool(true))?,
            0x89 => self.push_new(Obj::Bool(false))?,
            b'J' => {
                let b = self.take(4, "BININT")?;
                let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                self.push_new(Obj::Int(v.into()))?;
            }
            b'K' => {
                let v = self.take(1, "BININT1")?[0];
                self.push_new(Obj::Int(v.into()))?;
            }
            b'M' => {
                let v = self.u64_le(2, "BININT2")?;
                self.push_new(Obj::Int(v as i64))?;
            }
            0x8a => {
                let n = self.u64_le(1, "LONG1")?;
                self.long(n, "LONG1")?;
            }
            0x8b => {
                let n = self.u64_le(4, "LONG4")?;
                self.long(n, "LONG4")?;
            }
            b'I' => {
                let line = self.line("INT")?;
                let obj = match line.as_str() {
                    "01" => Obj::Bool(true),
                    "00" => Obj::Bool(false),
                    s => Obj::Int(self.parse_num(s, "INT")?),
                };
                self.push_new(obj)?;
            }
            b'L' => {
                let line = self.line("LONG")?;
                let v = self.parse_num(line.trim_end_matches('L'), "LONG")?;
                self.push_new(Obj::Int(v))?;
            }
            b'F' => {
                let line = self.line("FLOAT")?;
                let v = line
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| self.malformed(format!("FLOAT {line:?} is not a number")))?;
                self.push_new(Obj::Float(v))?;
            }
            b'G' => {
                let v = self.u64_be(8, "BINFLOAT")?;
                self.push_new(Obj::Float(f64::from_bits(v)))?;
            }
            b'S' => {
                let line = self.line("STRING")?;
                let s = line.trim();
                let unquoted = s
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    .ok_or_else(|| self.malformed("STRING argument is not quoted"))?;
                self.push_new(Obj::Str(unquoted.to_owned()))?;
            }
            b'V' => {
                let line = self.line("UNICODE")?;
                self.push_new(Obj::Str(line))?;
            }
            b'T' => self.sized_str(4, "BINSTRING", false)?,
            b'U' => self.sized_str(1, "SHORT_BINSTRING", false)?,
            b'X' => self.sized_str(4, "BINUNICODE", true)?,
            0x8c => self.sized_str(1, "SHORT_BINUNICODE", true)?,
            0x8d => self.sized_str(8, "BINUNICODE8", true)?,
            b'B' => self.sized_bytes(4, "BINBYTES")?,
            b'C' => self.sized_bytes(1, "SHORT_BINBYTES")?,
            0x8e => self.sized_bytes(8, "BINBYTES8")?,
            0x96 => self.sized_bytes(8, "BYTEARRAY8")?,
            b')' => self.push_new(Obj::Tuple(Vec::new()))?,
            b't' => {
                let items = self.pop_mark()?;
                self.push_container(Obj::Tuple(items.clone()), &items)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                    return Err(self.malformed("TUPLE1/2/3 with too few values on the stack"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_container(Obj::Tuple(items.clone()), &items)?;
            }
            b']' => self.push_new(Obj::List(Vec::new()))?,
            b'l' => {
                let items = self.pop_mark()?;
                self.push_container(Obj::List(items.clone()), &items)?;
            }
            b'}' => self.push_new(Obj::Dict(Box::default()))?,
            b'd' => {
                let items = self.pop_mark()?;
                let dict = self.heap_alloc(Obj::Dict(Box::default()), &[])?;
                self.set_items(dict, &items)?;
                self.stack.push(dict);
            }
            0x8f => self.push_new(Obj::Set(Vec::new()))?,
            0x91 => {
                let items = self.pop_mark()?;
                self.push_container(Obj::Set(items.clone()), &items)?;
            }
            b'a' => {
                let item = self.pop()?;
                let list = self.top()?;
                self.append(list, &[item])?;
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                let list = self.top()?;
                self.append(list, &items)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.set_items(dict, &[key, value])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let dict = self.top()?;
                self.set_items(dict, &items)?;
            }
            b'g' => {
                let line = self.line("GET")?;
                let key = self.parse_num(&line, "GET")?;
                self.get(key)?;
            }
            b'h' => {
                let key = self.u64_le(1, "BINGET")?;
                self.get(key as i64)?;
            }
            b'j' => {
                let key = self.u64_le(4, "LONG_BINGET")?;
                self.get(key as i64)?;
            }
            b'p' => {
                let line = self.line("PUT")?;
                let key = self.parse_num(&line, "PUT")?;
                self.put(key)?;
            }
            b'q' => {
                let key = self.u64_le(1, "BINPUT")?;
                self.put(key as i64)?;
            }
            b'r' => {
                let key = self.u64_le(4, "LONG_BINPUT")?;
                self.put(key as i64)?;
            }
            0x94 => {
                let key = self.memo.len() as i64;
                self.put(key)?;
            }
            b'c' => {
                let module = self.line("GLOBAL")?;
                let name = self.line("GLOBAL")?;
                let g = self.global(module, name)?;
                self.stack.push(g);
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (self.heap.str(module), self.heap.str(name))
                else {
                    return Err(self.malformed("STACK_GLOBAL needs two strings"));
                };
                let (module, name) = (module.to_owned(), name.to_owned());
                let g = self.global(module, name)?;
                self.stack.push(g);
            }
            b'R' => {
                let args = self.pop()?;
                let func = self.pop()?;
                let v = self.call(func, args, Call::Reduce)?;
                self.stack.push(v);
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = self.call(cls, args, Call::New)?;
                self.stack.push(v);
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = self.call(cls, args, Call::New)?;
                self.stack.push(v);
            }
            b'i' => {
                let module = self.line("INST")?;
                let name = self.line("INST")?;
                let items = self.pop_mark()?;
                let cls = self.global(module, name)?;
                let args = self.heap_alloc(Obj::Tuple(items.clone()), &items)?;
                let v = self.call(cls, args, Call::New)?;
                self.stack.push(v);
            }
            b'o' => {
                let items = self.pop_mark()?;
                let Some((&cls, rest)) = items.split_first() else {
                    return Err(self.malformed("OBJ without a class"));
                };
                let args = self.heap_alloc(Obj::Tuple(rest.to_vec()), rest)?;
                let v = self.call(cls, args, Call::New)?;
                self.stack.push(v);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state)?;
            }
            b'P' => {
                let line = self.line("PERSID")?;
                let s = self.heap_alloc(Obj::Str(line), &[])?;
                self.push_container(Obj::PersistentId(s), &[s])?;
            }
            b'Q' => {
                let pid = self.pop()?;
                self.push_container(Obj::PersistentId(pid), &[pid])?;
            }
            0x82..=0x84 => {
                return Err(self.malformed(
                    "EXT opcodes (the copyreg extension registry) name globals indirectly; refused",
                ))
            }
            0x97 | 0x98 => {
                return Err(
                    self.malformed("out-of-band buffers (pickle protocol 5) are not supported")
                )
            }
            other => return Err(self.malformed(format!("unknown opcode 0x{other:02x}"))),
        }
        Ok(None)
    }

    // ---- reading bytes ----

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                entry: self.entry.to_owned(),
                offset: self.data.len() as u64,
                what: format!("{what} at byte {} needs {n} bytes", self.op_at),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u64_le(&mut self, n: usize, what: &str) -> Result<u64> {
        let b = self.take(n, what)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn u64_be(&mut self, n: usize, what: &str) -> Result<u64> {
        let b = self.take(n, what)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A length prefix must fit in the bytes that remain.
    fn check_len(&self, n: u64, what: &str) -> Result<usize> {
        if n > self.remaining() as u64 {
            if n > PLAUSIBLE_LENGTH {
                return Err(Error::too_large(format!(
                    "{what} at byte {} of {} declares {n} bytes, but only {} remain",
                    self.op_at,
                    self.entry,
                    self.remaining()
                )));
            }
            return Err(Error::Truncated {
                entry: self.entry.to_owned(),
                offset: self.data.len() as u64,
                what: format!("{what} at byte {} declares {n} bytes", self.op_at),
            });
        }
        Ok(n as usize)
    }

    fn sized(&mut self, prefix: usize, what: &str) -> Result<&[u8]> {
        let n = self.u64_le(prefix, what)?;
        let n = self.check_len(n, what)?;
        self.take(n, what)
    }

    fn sized_str(&mut self, prefix: usize, what: &str, utf8: bool) -> Result<()> {
        let b = self.sized(prefix, what)?;
        let s = if utf8 {
            match std::str::from_utf8(b) {
                Ok(s) => s.to_owned(),
                Err(_) => return Err(self.malformed(format!("{what} is not valid UTF-8"))),
            }
        } else {
            // Python 2 byte strings: torch decodes them as text; keep what is readable.
            String::from_utf8_lossy(b).into_owned()
        };
        self.push_new(Obj::Str(s))
    }

    fn sized_bytes(&mut self, prefix: usize, what: &str) -> Result<()> {
        let b = self.sized(prefix, what)?.to_vec();
        self.push_new(Obj::Bytes(b))
    }

    fn line(&mut self, what: &str) -> Result<String> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Error::Truncated {
                entry: self.entry.to_owned(),
                offset: self.data.len() as u64,
                what: format!("{what} at byte {} has no end of line", self.op_at),
            });
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn parse_num(&self, s: &str, what: &str) -> Result<i64> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| self.malformed(format!("{what} argument {s:?} is not an integer")))
    }

    fn long(&mut self, n: u64, what: &str) -> Result<()> {
        let n = self.check_len(n, what)?;
        let b = self.take(n, what)?;
        let obj = if b.is_empty() {
            Obj::Int(0)
        } else if b.len() <= 8 {
            let negative = b[b.len() - 1] & 0x80 != 0;
            let mut buf = if negative { [0xff; 8] } else { [0; 8] };
            buf[..b.len()].copy_from_slice(b);
            Obj::Int(i64::from_le_bytes(buf))
        } else {
            Obj::BigInt(b.to_vec())
        };
        self.push_new(obj)
    }

    // ---- errors ----

    fn malformed(&self, what: impl std::fmt::Display) -> Error {
        Error::malformed(
            format!("{} byte {}", self.entry, self.op_at),
            what.to_string(),
        )
    }

    fn too_deep(&self) -> Error {
        Error::TooDeep {
            entry: self.entry.to_owned(),
            offset: self.op_at as u64,
            limit: self.limits.max_depth as usize,
        }
    }

    fn memo_limit(&self, what: String) -> Error {
        Error::MemoLimit {
            entry: self.entry.to_owned(),
            offset: self.op_at as u64,
            what,
        }
    }

    // ---- stack, memo, heap ----

    fn pop(&mut self) -> Result<ObjId> {
        if self.stack.len() <= self.marks.last().copied().unwrap_or(0) {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<ObjId> {
        if self.stack.len() <= self.marks.last().copied().unwrap_or(0) {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<ObjId>> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.malformed("no MARK to pop to"));
        };
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn get(&mut self, key: i64) -> Result<()> {
        let id = u32::try_from(key)
            .ok()
            .and_then(|k| self.memo.get(&k).copied())
            .ok_or_else(|| self.malformed(format!("memo key {key} is not defined")))?;
        self.stack.push(id);
        Ok(())
    }

    fn put(&mut self, key: i64) -> Result<()> {
        // Picklers number memo entries from 0 up; an index past the memo limit is a blow-up attempt.
        if key < 0 || key as u64 >= self.limits.max_memo as u64 {
            return Err(self.memo_limit(format!(
                "memo index {key} beyond the limit of {}",
                self.limits.max_memo
            )));
        }
        let key = u32::try_from(key)
            .map_err(|_| self.malformed(format!("memo key {key} is negative or too large")))?;
        let top = self.top()?;
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&key) {
            return Err(self.memo_limit(format!("more than {} memo entries", self.limits.max_memo)));
        }
        self.memo.insert(key, top);
        Ok(())
    }

    /// Allocate a value whose children are `children`, tracking depth and expanded size.
    fn heap_alloc(&mut self, obj: Obj, children: &[ObjId]) -> Result<ObjId> {
        if self.heap.objs.len() >= self.limits.max_objects {
            return Err(self.memo_limit(format!(
                "more than {} pickle values",
                self.limits.max_objects
            )));
        }
        let mut meta = Meta {
            depth: 0,
            expanded: 1,
        };
        for c in children {
            let m = self.heap.meta[c.0 as usize];
            meta.depth = meta.depth.max(m.depth + 1);
            meta.expanded = meta.expanded.saturating_add(m.expanded);
        }
        self.check_meta(meta)?;
        let id = ObjId(self.heap.objs.len() as u32);
        self.heap.objs.push(obj);
        self.heap.meta.push(meta);
        Ok(id)
    }

    fn check_meta(&self, meta: Meta) -> Result<()> {
        if meta.depth > self.limits.max_depth {
            return Err(self.too_deep());
        }
        if meta.expanded > self.limits.max_expanded {
            return Err(self.memo_limit(format!(
                "a value expands to more than {} elements through shared memo references (memo bomb)",
                self.limits.max_expanded
            )));
        }
        Ok(())
    }

    /// Record that `parent` now also holds `children`.
    fn grow(&mut self, parent: ObjId, children: &[ObjId]) -> Result<()> {
        let mut meta = self.heap.meta[parent.0 as usize];
        for c in children {
            let m = self.heap.meta[c.0 as usize];
            meta.depth = meta.depth.max(m.depth.saturating_add(1));
            meta.expanded = meta.expanded.saturating_add(m.expanded);
        }
        self.check_meta(meta)?;
        self.heap.meta[parent.0 as usize] = meta;
        Ok(())
    }

    fn push_new(&mut self, obj: Obj) -> Result<()> {
        self.push_container(obj, &[])
    }

    fn push_container(&mut self, obj: Obj, children: &[ObjId]) -> Result<()> {
        let id = self.heap_alloc(obj, children)?;
        self.stack.push(id);
        Ok(())
    }

    fn append(&mut self, list: ObjId, items: &[ObjId]) -> Result<()> {
        self.grow(list, items)?;
        match &mut self.heap.objs[list.0 as usize] {
            Obj::List(v) | Obj::Set(v) => v.extend_from_slice(items),
            Obj::Object(o) => o.list.extend_from_slice(items),
            Obj::Opaque | Obj::Unsupported(_) => {}
            _ => {
                let what = format!("APPEND to a {}", self.heap.describe(list));
                return Err(self.malformed(what));
            }
        }
        Ok(())
    }

    fn set_items(&mut self, dict: ObjId, items: &[ObjId]) -> Result<()> {
        if items.len() % 2 != 0 {
            return Err(self.malformed("SETITEMS with an odd number of values"));
        }
        self.grow(dict, items)?;
        let pairs = items.chunks_exact(2).map(|p| (p[0], p[1]));
        match &mut self.heap.objs[dict.0 as usize] {
            Obj::Dict(d) => d.items.extend(pairs),
            Obj::Object(o) => o.items.extend(pairs),
            Obj::Opaque | Obj::Unsupported(_) => {}
            _ => {
                let what = format!("SETITEM on a {}", self.heap.describe(dict));
                return Err(self.malformed(what));
            }
        }
        Ok(())
    }

    fn build(&mut self, target: ObjId, state: ObjId) -> Result<()> {
        self.grow(target, &[state])?;
        match &mut self.heap.objs[target.0 as usize] {
            Obj::Object(o) => o.state = Some(state),
            Obj::Dict(d) => d.attrs = Some(state),
            // Tensors carry no state the reader needs; placeholders take anything.
            Obj::Tensor(_) | Obj::Opaque | Obj::Unsupported(_) => {}
            _ => {
                let what = format!("BUILD on a {}", self.heap.describe(target));
                return Err(self.malformed(what));
            }
        }
        Ok(())
    }

    // ---- globals and calls ----

    fn global(&mut self, module: String, name: String) -> Result<ObjId> {
        let verdict = globals::classify(&module, &name);
        let index = self.heap.globals.len();
        self.heap.globals.push(GlobalUse {
            module,
            name,
            offset: self.op_at as u64,
            verdict,
        });
        if let Verdict::Refused(reason) = verdict {
            self.refuse(index, reason.to_owned())?;
        }
        self.heap_alloc(Obj::Global(index), &[])
    }

    /// Refuse global `index`: an error in strict mode, a finding in audit mode.
    fn refuse(&mut self, index: usize, reason: String) -> Result<()> {
        let g = &self.heap.globals[index];
        match self.mode {
            Mode::Strict => Err(Error::RefusedGlobal {
                global: g.qualified(),
                offset: g.offset,
                entry: self.entry.to_owned(),
                reason,
            }),
            Mode::Audit => {
                let finding = Finding {
                    global: g.qualified(),
                    offset: g.offset,
                    reason,
                };
                if !self.heap.findings.contains(&finding) {
                    self.heap.findings.push(finding);
                }
                Ok(())
            }
        }
    }

    fn call(&mut self, func: ObjId, args: ObjId, how: Call) -> Result<ObjId> {
        let index = match self.heap.get(func) {
            Obj::Global(g) => *g,
            Obj::Opaque if self.mode == Mode::Audit => return self.heap_alloc(Obj::Opaque, &[]),
            _ => {
                let what = format!(
                    "calling a {}, which is not a global",
                    self.heap.describe(func)
                );
                return Err(self.malformed(what));
            }
        };
        match self.heap.globals[index].verdict {
            Verdict::Refused(_) => self.heap_alloc(Obj::Opaque, &[]),
            Verdict::Unsupported(what) => self.heap_alloc(Obj::Unsupported(what), &[args]),
            Verdict::Class if how == Call::New => self.new_object(index, None, args),
            Verdict::Class => {
                self.refuse(index, CLASS_CALLED.to_owned())?;
                let placeholder = self.heap_alloc(Obj::Opaque, &[])?;
                let name = self.heap.globals[index].qualified();
                if let Some(finding) =
                    self.heap.findings.iter().position(|f| {
                        f.global == name && f.offset == self.heap.globals[index].offset
                    })
                {
                    self.heap.called_classes.push((placeholder, finding));
                }
                Ok(placeholder)
            }
            Verdict::Known(k) => self.known(k, func, args, how),
        }
    }

    fn new_object(&mut self, class: usize, state: Option<ObjId>, args: ObjId) -> Result<ObjId> {
        let children: Vec<ObjId> = state.into_iter().chain([args]).collect();
        self.heap_alloc(
            Obj::Object(Box::new(Object {
                class,
                state,
                items: Vec::new(),
                list: Vec::new(),
            })),
            &children,
        )
    }

    fn args(&self, args: ObjId, func: ObjId, min: usize) -> Result<Vec<ObjId>> {
        match self.heap.seq(args) {
            Some(v) if v.len() >= min => Ok(v.to_vec()),
            _ => {
                let what = format!(
                    "{} needs at least {min} arguments, got a {}",
                    self.heap.describe(func),
                    self.heap.describe(args)
                );
                Err(self.malformed(what))
            }
        }
    }

    fn uints(&self, id: ObjId, what: &str) -> Result<Vec<u64>> {
        let Some(items) = self.heap.seq(id) else {
            let got = self.heap.describe(id);
            return Err(self.malformed(format!("tensor {what} is a {got}, not a tuple")));
        };
        items.iter().map(|&i| self.uint(i, what)).collect()
    }

    /// A tensor size, stride or offset: a non-negative int (larger than 64 bits is too large).
    fn uint(&self, id: ObjId, what: &str) -> Result<u64> {
        match self.heap.get(id) {
            Obj::BigInt(b) if b.last().is_some_and(|&x| x & 0x80 == 0) => {
                Err(Error::too_large(format!(
                    "tensor {what} at byte {} of {} has a value beyond 64 bits",
                    self.op_at, self.entry
                )))
            }
            _ => match self.heap.int(id) {
                Some(v) if v >= 0 => Ok(v as u64),
                _ => Err(self.malformed(format!(
                    "tensor {what} holds a value that is not a non-negative int"
                ))),
            },
        }
    }

    fn known(&mut self, k: Known, func: ObjId, args: ObjId, how: Call) -> Result<ObjId> {
        match k {
            Known::RebuildTensor | Known::RebuildTensorV2 | Known::RebuildTensorV3 => {
                let min = match k {
                    Known::RebuildTensor => 4,
                    Known::RebuildTensorV2 => 6,
                    _ => 7,
                };
                let a = self.args(args, func, min)?;
                let storage_offset = self.uint(a[1], "storage offset")?;
                let size = self.uints(a[2], "size")?;
                let stride = self.uints(a[3], "stride")?;
                if size.len() != stride.len() {
                    return Err(self.malformed(format!(
                        "tensor size has {} dimensions but stride has {}",
                        size.len(),
                        stride.len()
                    )));
                }
                let dtype = if k == Known::RebuildTensorV3 {
                    match self.heap.global_of(a[6]).map(|g| g.verdict) {
                        Some(Verdict::Known(Known::Dtype(d))) => Some(d),
                        _ => {
                            return Err(
                                self.malformed("_rebuild_tensor_v3 dtype is not a torch dtype")
                            )
                        }
                    }
                } else {
                    None
                };
                let t = TensorRef {
                    storage: a[0],
                    storage_offset,
                    size,
                    stride,
                    dtype,
                };
                self.heap_alloc(Obj::Tensor(Box::new(t)), &[a[0]])
            }
            Known::RebuildParameter | Known::RebuildParameterWithState => {
                let a = self.args(args, func, 3)?;
                match self.heap.get(a[0]) {
                    Obj::Tensor(_) | Obj::Unsupported(_) | Obj::Opaque => Ok(a[0]),
                    _ => {
                        let what = format!("_rebuild_parameter of a {}", self.heap.describe(a[0]));
                        Err(self.malformed(what))
                    }
                }
            }
            Known::RebuildFromTypeV2 => {
                let a = self.args(args, func, 3)?;
                let inner = match self.heap.global_of(a[0]).map(|g| g.verdict) {
                    Some(Verdict::Known(Known::RebuildFromTypeV2)) | None => {
                        return Err(self.malformed("_rebuild_from_type_v2 needs a rebuild function"))
                    }
                    Some(_) => a[0],
                };
                self.call(inner, a[2], Call::Reduce)
            }
            Known::OrderedDict => {
                let dict = self.heap_alloc(Obj::Dict(Box::default()), &[])?;
                if how == Call::Reduce {
                    if let Some(&[pairs]) = self.heap.seq(args) {
                        let flat: Vec<ObjId> = match self.heap.seq(pairs) {
                            Some(p) => p
                                .iter()
                                .map(|&pair| match self.heap.seq(pair) {
                                    Some(&[k, v]) => Ok([k, v]),
                                    _ => Err(self.malformed("OrderedDict item is not a pair")),
                                })
                                .collect::<Result<Vec<_>>>()?
                                .concat(),
                            None => {
                                return Err(
                                    self.malformed("OrderedDict argument is not a list of pairs")
                                )
                            }
                        };
                        self.set_items(dict, &flat)?;
                    }
                }
                Ok(dict)
            }
            Known::TorchSize | Known::ListLike | Known::Set | Known::FrozenSet => {
                let items = match self.heap.seq(args) {
                    Some(&[]) | None => Vec::new(),
                    Some(&[first, ..]) => match self.heap.get(first) {
                        Obj::Tuple(v) | Obj::List(v) | Obj::Set(v) => v.clone(),
                        _ => {
                            let what = format!(
                                "{} of a {}",
                                self.heap.describe(func),
                                self.heap.describe(first)
                            );
                            return Err(self.malformed(what));
                        }
                    },
                };
                let obj = match k {
                    Known::Set | Known::FrozenSet => Obj::Set(items.clone()),
                    Known::ListLike
                        if self.heap.global_of(func).is_some_and(|g| g.name == "list") =>
                    {
                        Obj::List(items.clone())
                    }
                    _ => Obj::Tuple(items.clone()),
                };
                self.heap_alloc(obj, &items)
            }
            Known::CodecsEncode => {
                let a = self.args(args, func, 1)?;
                let Some(text) = self.heap.str(a[0]) else {
                    return Err(self.malformed("_codecs.encode of a non-string"));
                };
                let latin1 = a.get(1).and_then(|&e| self.heap.str(e)).is_some_and(|e| {
                    e.eq_ignore_ascii_case("latin1") || e.eq_ignore_ascii_case("latin-1")
                });
                let bytes = if latin1 {
                    text.chars()
                        .map(|c| {
                            u8::try_from(u32::from(c))
                                .map_err(|_| self.malformed("latin1 text outside 0..=255"))
                        })
                        .collect::<Result<Vec<u8>>>()?
                } else {
                    text.as_bytes().to_vec()
                };
                self.heap_alloc(Obj::Bytes(bytes), &[])
            }
            Known::Reconstructor => {
                let a = self.args(args, func, 3)?;
                let class = match self.heap.get(a[0]) {
                    Obj::Global(g) => *g,
                    _ => return Err(self.malformed("copyreg._reconstructor needs a class")),
                };
                match self.heap.globals[class].verdict {
                    Verdict::Class => self.new_object(class, None, args),
                    Verdict::Known(Known::OrderedDict) => {
                        self.heap_alloc(Obj::Dict(Box::default()), &[])
                    }
                    Verdict::Refused(_) => self.heap_alloc(Obj::Opaque, &[]),
                    _ => self.heap_alloc(Obj::Opaque, &[args]),
                }
            }
            Known::Slice
            | Known::ByteArray
            | Known::BaseType
            | Known::Storage(_)
            | Known::Dtype(_)
            | Known::Opaque => self.heap_alloc(Obj::Opaque, &[args]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &[u8]) -> Result<Unpickled> {
        unpickle(p, "test.pkl", Mode::Strict, &Limits::default())
    }

    #[test]
    fn memo_shares_objects_and_sees_later_appends() {
        // [] memoized as 0, stored twice in a tuple, then appended to through the memo.
        let p = b"\x80\x02]q\x00h\x00h\x00\x86q\x01h\x00K\x07a0h\x01.";
        let u = run(p).unwrap();
        let items = u.heap.seq(u.root).unwrap();
        assert_eq!(items[0], items[1]);
        assert_eq!(u.heap.seq(items[0]).unwrap().len(), 1);
    }

    #[test]
    fn refused_global_names_itself_and_its_offset() {
        let p = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let e = run(p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing global posix.system at byte 2 of test.pkl: not a tensor or container type (its module can run code or reach the system)"
        );
    }

    #[test]
    fn calling_a_class_is_refused() {
        let p = b"\x80\x02c__main__\nNet\n)R.";
        assert_eq!(run(p).unwrap_err().kind(), "refused-global");
        let p = b"\x80\x02c__main__\nNet\n)\x81}b.";
        assert!(run(p).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b']', 200_000));
        p.extend(std::iter::repeat_n(b'a', 199_999));
        p.push(b'.');
        assert_eq!(run(&p).unwrap_err().kind(), "too-deep");
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b'(', 200_000));
        assert_eq!(run(&p).unwrap_err().kind(), "too-deep");
    }

    #[test]
    fn memo_bomb_is_refused() {
        let mut p = b"\x80\x02]q\x00".to_vec();
        for i in 0..64u8 {
            p.extend([b'h', i, b'h', i, 0x86, b'q', i + 1]);
        }
        p.push(b'.');
        assert_eq!(run(&p).unwrap_err().kind(), "memo-limit");
    }

    #[test]
    fn length_prefix_past_the_end_is_refused() {
        assert_eq!(
            run(b"\x80\x02X\xff\xff\xff\x7f.").unwrap_err().kind(),
            "too-large"
        );
        assert_eq!(
            run(b"\x80\x02X\x10\x00\x00\x00ab").unwrap_err().kind(),
            "truncated"
        );
    }
}
