//! Property tests: random state_dicts written in both torch formats read back exactly (checked against
//! a naive per-element gather), random pickles of allowed structures round-trip through the VM, and
//! arbitrary or mutated bytes never panic.

mod common;

use common::builders::{self, Pickle, SynthTensor};
use nnblob::checkpoint::pickle::{self, Heap, Limits, Mode, Obj, ObjId};
use nnblob::checkpoint::{self, Options};
use proptest::prelude::*;

const DTYPES: &[(&str, usize, &str)] = &[
    ("DoubleStorage", 8, "F64"),
    ("FloatStorage", 4, "F32"),
    ("HalfStorage", 2, "F16"),
    ("BFloat16Storage", 2, "BF16"),
    ("LongStorage", 8, "I64"),
    ("IntStorage", 4, "I32"),
    ("ShortStorage", 2, "I16"),
    ("CharStorage", 1, "I8"),
    ("ByteStorage", 1, "U8"),
    ("BoolStorage", 1, "BOOL"),
];

/// A tensor view: dtype, shape, a permutation of its strides, extra storage offset, a stride-0 dim.
fn tensor_strategy() -> impl Strategy<Value = (usize, Vec<u64>, bool, u64, Option<usize>, u64)> {
    (
        0..DTYPES.len(),
        prop::collection::vec(0u64..5, 0..4),
        any::<bool>(),
        0u64..4,
        prop::option::of(0usize..4),
        any::<u64>(),
    )
}

fn make_tensor(
    i: usize,
    (d, size, reverse, offset, zero_dim, seed): (usize, Vec<u64>, bool, u64, Option<usize>, u64),
) -> SynthTensor {
    let (storage_type, elem_size, _) = DTYPES[d];
    // Strides of a contiguous layout in some dimension order, optionally one broadcast (stride 0) dim.
    let mut order: Vec<usize> = (0..size.len()).collect();
    if reverse {
        order.reverse();
    }
    let mut stride = vec![0u64; size.len()];
    let mut acc = 1u64;
    for &dim in order.iter().rev() {
        stride[dim] = acc;
        acc *= size[dim].max(1);
    }
    if let Some(z) = zero_dim.filter(|&z| z < size.len()) {
        stride[z] = 0;
    }
    let numel = acc + offset;
    let mut state = seed | 1;
    let storage: Vec<u8> = (0..numel as usize * elem_size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    SynthTensor {
        name: format!("layer{i}.weight"),
        storage_type,
        elem_size,
        key: format!("k{i}"),
        storage,
        offset,
        size,
        stride,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_state_dicts_round_trip_in_both_formats(views in prop::collection::vec(tensor_strategy(), 0..6), deflate in any::<bool>()) {
        let tensors: Vec<SynthTensor> = views.into_iter().enumerate().map(|(i, v)| make_tensor(i, v)).collect();
        let (zip, legacy) = builders::both_formats(&tensors, deflate);
        for bytes in [zip, legacy] {
            let ckpt = checkpoint::from_bytes(bytes, &Options::default()).unwrap();
            prop_assert_eq!(ckpt.tensors.len(), tensors.len());
            for (got, want) in ckpt.tensors.iter().zip(&tensors) {
                prop_assert_eq!(&got.name, &want.name);
                prop_assert_eq!(got.dtype.code(), DTYPES.iter().find(|d| d.0 == want.storage_type).unwrap().2);
                let shape: Vec<usize> = want.size.iter().map(|&s| s as usize).collect();
                prop_assert_eq!(&got.shape, &shape);
                prop_assert_eq!(got.bytes(), &builders::reference_gather(want)[..]);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = checkpoint::from_bytes(bytes.clone(), &Options::default());
        let _ = checkpoint::scan_bytes(bytes.clone());
        for mode in [Mode::Strict, Mode::Audit] {
            let _ = pickle::unpickle(&bytes, "fuzz", mode, &Limits::default());
        }
        let mut framed = vec![0x80, 2];
        framed.extend_from_slice(&bytes);
        let _ = pickle::unpickle(&framed, "fuzz", Mode::Strict, &Limits::default());
    }

    #[test]
    fn mutated_torch_files_never_panic(view in tensor_strategy(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), legacy in any::<bool>()) {
        let (zip, leg) = builders::both_formats(&[make_tensor(0, view)], false);
        let mut bytes = if legacy { leg } else { zip };
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = checkpoint::from_bytes(bytes.clone(), &Options::default());
        let _ = checkpoint::scan_bytes(bytes.clone());
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = checkpoint::from_bytes(bytes, &Options::default());
    }

    #[test]
    fn random_pickles_of_allowed_structures_round_trip(value in value_strategy(), memoize in any::<bool>()) {
        let mut p = Pickle::default();
        let mut memo = 0u32;
        write_value(&mut p, &value, memoize, &mut memo);
        let bytes = p.stop();
        let u = pickle::unpickle(&bytes, "prop", Mode::Strict, &Limits::default()).unwrap();
        prop_assert_eq!(read_value(&u.heap, u.root), value);
        prop_assert_eq!(u.len, bytes.len());
    }
}

/// A plain Python value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(String, Value)>),
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(|f| Value::Float(f.to_bits())),
        "[a-z._]{0,12}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..6).prop_map(|mut kv| {
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                kv.dedup_by(|a, b| a.0 == b.0);
                Value::Dict(kv)
            }),
        ]
    })
}

/// Write `v` with the opcodes a pickler uses; containers are memoized and filled afterwards when
/// `memoize` is set, so the round trip checks that memo references share the filled object.
fn write_value(p: &mut Pickle, v: &Value, memoize: bool, memo: &mut u32) {
    match v {
        Value::None => {
            p.op(b"N");
        }
        Value::Bool(b) => {
            p.op(if *b { b"\x88" } else { b"\x89" });
        }
        Value::Int(i) => {
            p.int(*i);
        }
        Value::Float(bits) => {
            p.op(b"G").op(&bits.to_be_bytes());
        }
        Value::Str(s) => {
            p.str(s);
        }
        Value::Tuple(items) => {
            p.mark();
            for item in items {
                write_value(p, item, memoize, memo);
            }
            p.tuple();
        }
        Value::List(items) => {
            p.op(b"]");
            let id = put(p, memoize, memo);
            if let Some(id) = id {
                // Fill the list through a memo reference (GET), then pop that reference.
                p.op(b"0h").op(&[id]);
            }
            p.mark();
            for item in items {
                write_value(p, item, memoize, memo);
            }
            p.op(b"e");
        }
        Value::Dict(items) => {
            p.op(b"}");
            put(p, memoize, memo);
            p.mark();
            for (k, item) in items {
                p.str(k);
                write_value(p, item, memoize, memo);
            }
            p.op(b"u");
        }
    }
}

fn put(p: &mut Pickle, memoize: bool, memo: &mut u32) -> Option<u8> {
    if !memoize || *memo > 255 {
        return None;
    }
    let id = *memo as u8;
    p.op(b"q").op(&[id]);
    *memo += 1;
    Some(id)
}

fn read_value(heap: &Heap, id: ObjId) -> Value {
    match heap.get(id) {
        Obj::None => Value::None,
        Obj::Bool(b) => Value::Bool(*b),
        Obj::Int(i) => Value::Int(*i),
        Obj::Float(f) => Value::Float(f.to_bits()),
        Obj::Str(s) => Value::Str(s.clone()),
        Obj::List(v) => Value::List(v.iter().map(|&i| read_value(heap, i)).collect()),
        Obj::Tuple(v) => Value::Tuple(v.iter().map(|&i| read_value(heap, i)).collect()),
        Obj::Dict(d) => Value::Dict(
            d.items
                .iter()
                .map(|&(k, v)| (heap.str(k).unwrap().to_owned(), read_value(heap, v)))
                .collect(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}
