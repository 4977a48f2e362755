//! The parts of torch's serialized ExportedProgram (`models/model.json`) that nnblob reads.
//!
//! In: the JSON bytes. Out: a [`Program`] — nodes with their ATen target, named arguments and
//! outputs, the tensor shapes torch recorded, and the graph signature (which placeholder is a
//! parameter, a buffer or a user input, and its `state_dict` key). Unions of the schema are
//! one-key objects (`{"as_int": 8}`) and are read as [`Arg`]; fields nnblob does not use are
//! ignored, so minor schema versions read alike. serde_json's nesting limit (128) bounds the
//! recursion into known fields on hostile files; unknown ones are skipped.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::checkpoint::Dtype;

/// The serialized ExportedProgram.
#[derive(Debug, Deserialize)]
pub struct Program {
    pub graph_module: GraphModule,
    pub schema_version: SchemaVersion,
    #[serde(default)]
    pub torch_version: Option<String>,
    /// Symbol → value range; non-empty when the program was exported with dynamic shapes.
    #[serde(default)]
    pub range_constraints: BTreeMap<String, Value>,
}

impl Program {
    /// Parses the model JSON; the error names the line and column.
    pub fn parse(json: &[u8]) -> Result<Program, String> {
        serde_json::from_slice(&quote_non_finite(json))
            .map_err(|e| format!("not a serialized ExportedProgram: {e}"))
    }
}

/// The JSON with the bare `Infinity`, `-Infinity` and `NaN` tokens Python's `json.dumps` writes
/// (torch before 2.7) turned into the strings later releases write, which [`Arg`] reads.
fn quote_non_finite(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut in_string, mut escaped) = (0, false, false);
    while i < json.len() {
        let c = json[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if c == b'"' {
            in_string = true;
        } else if let Some(t) = TOKENS.iter().find(|t| json[i..].starts_with(t)) {
            let o = out.get_or_insert_with(|| json[..i].to_vec());
            o.push(b'"');
            o.extend_from_slice(t);
            o.push(b'"');
            i += t.len();
            continue;
        }
        if let Some(o) = &mut out {
            o.push(c);
        }
        i += 1;
    }
    match out {
        Some(o) => std::borrow::Cow::Owned(o),
        None => std::borrow::Cow::Borrowed(json),
    }
}

#[derive(Debug, Deserialize)]
pub struct SchemaVersion {
    pub major: u32,
    pub minor: u32,
}

#[derive(Debug, Deserialize)]
pub struct GraphModule {
    pub graph: GraphDef,
    pub signature: Signature,
}

#[derive(Debug, Deserialize)]
pub struct GraphDef {
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
    pub nodes: Vec<NodeDef>,
    /// Every tensor's dtype and shape, by name.
    pub tensor_values: BTreeMap<String, TensorMeta>,
}

/// One call in the graph.
#[derive(Debug, Deserialize)]
pub struct NodeDef {
    /// `torch.ops.aten.conv2d.default`, `_operator.getitem`, ...
    pub target: String,
    pub inputs: Vec<NamedArg>,
    pub outputs: Vec<Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// An argument by its schema name; arguments left at their default are absent.
#[derive(Debug, Deserialize)]
pub struct NamedArg {
    pub name: String,
    pub arg: Value,
}

/// A tensor's dtype, shape and layout as recorded.
#[derive(Debug, Deserialize)]
pub struct TensorMeta {
    pub dtype: i64,
    pub sizes: Vec<SymInt>,
    pub strides: Vec<SymInt>,
    pub storage_offset: SymInt,
}

/// An integer that may be symbolic: `{"as_int": 8}` or `{"as_expr": ...}`.
#[derive(Debug, Deserialize)]
pub struct SymInt {
    #[serde(default)]
    pub as_int: Option<i64>,
    #[serde(default)]
    pub as_expr: Option<Value>,
}

impl SymInt {
    /// The value when it is a known non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_int.and_then(|v| u64::try_from(v).ok())
    }
}

#[derive(Debug, Deserialize)]
pub struct Signature {
    pub input_specs: Vec<Value>,
    pub output_specs: Vec<Value>,
}

/// `data/weights/model_weights_config.json`.
#[derive(Debug, Deserialize)]
pub struct WeightsConfig {
    pub config: BTreeMap<String, WeightEntry>,
}

#[derive(Debug, Deserialize)]
pub struct WeightEntry {
    pub path_name: String,
    #[serde(default)]
    pub use_pickle: bool,
    pub tensor_meta: TensorMeta,
}

/// The dtype of torch's export schema code (`ScalarType` of `torch/_export/serde/schema.py`).
pub fn dtype(code: i64) -> Option<Dtype> {
    Some(match code {
        1 => Dtype::U8,
        2 => Dtype::I8,
        3 => Dtype::I16,
        4 => Dtype::I32,
        5 => Dtype::I64,
        6 => Dtype::F16,
        7 => Dtype::F32,
        8 => Dtype::F64,
        12 => Dtype::Bool,
        13 => Dtype::BF16,
        _ => return None,
    })
}

/// An argument value, from the one-key union object.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Tensor(String),
    Tensors(Vec<String>),
    Int(i64),
    Ints(Vec<i64>),
    Float(f64),
    Floats(Vec<f64>),
    Bool(bool),
    Str(String),
    None,
    /// Anything else (symbolic ints, scalar types, devices, ...), by its union key.
    Other(String),
}

impl Arg {
    /// Reads a union object: the first key whose value is not null (2.1-style files write every
    /// alternative, the others null).
    pub fn from_json(v: &Value) -> Arg {
        let Some(obj) = v.as_object() else {
            return Arg::Other("not an object".into());
        };
        let Some((key, val)) = obj.iter().find(|(_, v)| !v.is_null()) else {
            return Arg::None;
        };
        let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
        let float = |v: &Value| match v {
            Value::String(s) if s == "Infinity" => Some(f64::INFINITY),
            Value::String(s) if s == "-Infinity" => Some(f64::NEG_INFINITY),
            Value::String(s) if s == "NaN" => Some(f64::NAN),
            v => v.as_f64(),
        };
        let list = |f: &dyn Fn(&Value) -> Option<Arg>| -> Option<Vec<Arg>> {
            val.as_array()?.iter().map(f).collect()
        };
        let parsed = match key.as_str() {
            "as_tensor" => name(val).map(Arg::Tensor),
            "as_tensors" => val
                .as_array()
                .and_then(|a| a.iter().map(name).collect::<Option<Vec<_>>>())
                .map(Arg::Tensors),
            "as_int" => val.as_i64().map(Arg::Int),
            "as_ints" => list(&|v| v.as_i64().map(Arg::Int)).map(|v| {
                Arg::Ints(
                    v.into_iter()
                        .filter_map(|a| match a {
                            Arg::Int(i) => Some(i),
                            _ => None,
                        })
                        .collect(),
                )
            }),
            "as_float" => float(val).map(Arg::Float),
            "as_floats" => val
                .as_array()
                .and_then(|a| a.iter().map(float).collect::<Option<Vec<_>>>())
                .map(Arg::Floats),
            "as_bool" => val.as_bool().map(Arg::Bool),
            "as_string" => val.as_str().map(|s| Arg::Str(s.to_string())),
            "as_none" => Some(Arg::None),
            _ => None,
        };
        parsed.unwrap_or_else(|| Arg::Other(key.clone()))
    }
}

/// What a placeholder of the graph is.
#[derive(Clone, Debug, PartialEq)]
pub enum InputSpec {
    /// A parameter: placeholder name, `state_dict` key.
    Parameter { arg: String, key: String },
    /// A buffer: placeholder name, `state_dict` key.
    Buffer { arg: String, key: String },
    /// A tensor the caller passes.
    User { arg: String },
    /// Anything else (lifted constants, custom objects, tokens), by its kind.
    Other { arg: String, kind: String },
}

impl InputSpec {
    pub fn from_json(v: &Value) -> Option<InputSpec> {
        let (kind, body) = v.as_object()?.iter().find(|(_, v)| !v.is_null())?;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let arg_name = || s(body.get("arg").and_then(|a| a.get("name")));
        Some(match kind.as_str() {
            "parameter" => InputSpec::Parameter {
                arg: arg_name()?,
                key: s(body.get("parameter_name"))?,
            },
            "buffer" => InputSpec::Buffer {
                arg: arg_name()?,
                key: s(body.get("buffer_name"))?,
            },
            "user_input" => match Arg::from_json(body.get("arg")?) {
                Arg::Tensor(arg) => InputSpec::User { arg },
                _ => InputSpec::Other {
                    arg: String::new(),
                    kind: "non-tensor user input".into(),
                },
            },
            other => InputSpec::Other {
                arg: arg_name().unwrap_or_default(),
                kind: other.to_string(),
            },
        })
    }
}

/// The tensor a `user_output` output spec names; `None` for other kinds (buffer mutations, ...).
pub fn user_output(v: &Value) -> Option<Result<String, String>> {
    let (kind, body) = v.as_object()?.iter().find(|(_, v)| !v.is_null())?;
    if kind != "user_output" {
        return Some(Err(kind.clone()));
    }
    match Arg::from_json(body.get("arg")?) {
        Arg::Tensor(t) => Some(Ok(t)),
        other => Some(Err(format!("user output {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::quote_non_finite;

    #[test]
    fn bare_non_finite_numbers_become_strings_and_strings_stay() {
        let json = br#"{"a": Infinity, "b": [-Infinity, NaN], "c": "NaN Infinity \" NaN"}"#;
        assert_eq!(
            &*quote_non_finite(json),
            br#"{"a": "Infinity", "b": ["-Infinity", "NaN"], "c": "NaN Infinity \" NaN"}"#
        );
        assert!(matches!(
            quote_non_finite(b"{}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
