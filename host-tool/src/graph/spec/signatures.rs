//! The module constructors and functions a spec may call, with PyTorch's argument names and
//! defaults, and how each becomes an [`Op`].

use crate::graph::ops::{
    Activation, AdaptivePool, BatchNorm, Binary, BinaryKind, Concat, Conv, ConvTranspose, Flatten,
    GroupNorm, LayerNorm, Linear, MatMul, Op, PRelu, Padding, Permute, Pool, PoolKind, Recurrent,
    ResampleMode, Reshape, Softmax, Target, Upsample, ZeroPad, MAX_RECURRENT_LAYERS,
};
use nnblob_format::meta::Cell;

/// A constant argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
}

impl Lit {
    pub(super) fn describe(&self) -> String {
        match self {
            Lit::Int(i) => i.to_string(),
            Lit::Float(f) => f.to_string(),
            Lit::Str(s) => format!("'{s}'"),
            Lit::Bool(b) => {
                if *b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            Lit::None => "None".into(),
            Lit::Tuple(items) => {
                let v: Vec<String> = items.iter().map(Lit::describe).collect();
                format!("({})", v.join(", "))
            }
        }
    }
}

/// A parameter: its name and its default (`None` when required).
type Param = (&'static str, Option<Lit>);

fn req(name: &'static str) -> Param {
    (name, None)
}
fn int(name: &'static str, v: i64) -> Param {
    (name, Some(Lit::Int(v)))
}
fn float(name: &'static str, v: f64) -> Param {
    (name, Some(Lit::Float(v)))
}
fn boolean(name: &'static str, v: bool) -> Param {
    (name, Some(Lit::Bool(v)))
}
fn none(name: &'static str) -> Param {
    (name, Some(Lit::None))
}
fn string(name: &'static str, v: &str) -> Param {
    (name, Some(Lit::Str(v.into())))
}

/// The module constructors (`nn.X`), with the arguments `__init__` takes.
pub fn module_signature(name: &str) -> Option<Vec<Param>> {
    let conv = || {
        vec![
            req("in_channels"),
            req("out_channels"),
            req("kernel_size"),
            int("stride", 1),
            int("padding", 0),
            int("dilation", 1),
            int("groups", 1),
            boolean("bias", true),
            string("padding_mode", "zeros"),
        ]
    };
    let bn = || {
        vec![
            req("num_features"),
            float("eps", 1e-5),
            float("momentum", 0.1),
            boolean("affine", true),
            boolean("track_running_stats", true),
        ]
    };
    let inplace = || vec![boolean("inplace", false)];
    Some(match name {
        "Conv1d" | "Conv2d" => conv(),
        "ConvTranspose1d" | "ConvTranspose2d" => vec![
            req("in_channels"),
            req("out_channels"),
            req("kernel_size"),
            int("stride", 1),
            int("padding", 0),
            int("output_padding", 0),
            int("groups", 1),
            boolean("bias", true),
            int("dilation", 1),
            string("padding_mode", "zeros"),
        ],
        "Linear" => vec![
            req("in_features"),
            req("out_features"),
            boolean("bias", true),
        ],
        "BatchNorm1d" | "BatchNorm2d" => bn(),
        "LayerNorm" => vec![
            req("normalized_shape"),
            float("eps", 1e-5),
            boolean("elementwise_affine", true),
            boolean("bias", true),
        ],
        "GroupNorm" => vec![
            req("num_groups"),
            req("num_channels"),
            float("eps", 1e-5),
            boolean("affine", true),
        ],
        "GRU" | "LSTM" => {
            let mut p = vec![
                req("input_size"),
                req("hidden_size"),
                int("num_layers", 1),
                boolean("bias", true),
                boolean("batch_first", false),
                float("dropout", 0.0),
                boolean("bidirectional", false),
            ];
            if name == "LSTM" {
                p.push(int("proj_size", 0));
            }
            p
        }
        "ReLU" | "ReLU6" | "SiLU" | "Hardswish" | "Hardsigmoid" => inplace(),
        "LeakyReLU" => vec![float("negative_slope", 0.01), boolean("inplace", false)],
        "PReLU" => vec![int("num_parameters", 1), float("init", 0.25)],
        "Sigmoid" | "Tanh" => vec![],
        "GELU" => vec![string("approximate", "none")],
        "Softmax" => vec![none("dim")],
        "MaxPool1d" | "MaxPool2d" => vec![
            req("kernel_size"),
            none("stride"),
            int("padding", 0),
            int("dilation", 1),
            boolean("return_indices", false),
            boolean("ceil_mode", false),
        ],
        "AvgPool1d" => vec![
            req("kernel_size"),
            none("stride"),
            int("padding", 0),
            boolean("ceil_mode", false),
            boolean("count_include_pad", true),
        ],
        "AvgPool2d" => vec![
            req("kernel_size"),
            none("stride"),
            int("padding", 0),
            boolean("ceil_mode", false),
            boolean("count_include_pad", true),
            none("divisor_override"),
        ],
        "AdaptiveAvgPool1d" | "AdaptiveAvgPool2d" => vec![req("output_size")],
        "AdaptiveMaxPool1d" | "AdaptiveMaxPool2d" => {
            vec![req("output_size"), boolean("return_indices", false)]
        }
        "Upsample" => vec![
            none("size"),
            none("scale_factor"),
            string("mode", "nearest"),
            none("align_corners"),
            none("recompute_scale_factor"),
        ],
        "UpsamplingNearest2d" | "UpsamplingBilinear2d" => {
            vec![none("size"), none("scale_factor")]
        }
        "ZeroPad2d" => vec![req("padding")],
        "Flatten" => vec![int("start_dim", 1), int("end_dim", -1)],
        "Dropout" | "Dropout1d" | "Dropout2d" => vec![float("p", 0.5), boolean("inplace", false)],
        _ => return None,
    })
}

/// The functions (`F.x`, `torch.x`): the module they compute, how many leading tensor arguments
/// they take, and the remaining arguments.
pub fn function_signature(name: &str) -> Option<(&'static str, Vec<Param>)> {
    let inplace = || vec![boolean("inplace", false)];
    Some(match name {
        "relu" => ("ReLU", inplace()),
        "relu6" => ("ReLU6", inplace()),
        "silu" => ("SiLU", inplace()),
        "hardswish" => ("Hardswish", inplace()),
        "hardsigmoid" => ("Hardsigmoid", inplace()),
        "leaky_relu" => (
            "LeakyReLU",
            vec![float("negative_slope", 0.01), boolean("inplace", false)],
        ),
        "sigmoid" => ("Sigmoid", vec![]),
        "tanh" => ("Tanh", vec![]),
        "gelu" => ("GELU", vec![string("approximate", "none")]),
        "softmax" => ("Softmax", vec![none("dim")]),
        "flatten" => ("flatten", vec![int("start_dim", 0), int("end_dim", -1)]),
        "reshape" => ("reshape", vec![req("shape")]),
        "permute" => ("permute", vec![req("dims")]),
        "transpose" => ("transpose", vec![req("dim0"), req("dim1")]),
        "unsqueeze" => ("unsqueeze", vec![req("dim")]),
        "squeeze" => ("squeeze", vec![none("dim")]),
        "mean" => ("mean", vec![none("dim"), boolean("keepdim", false)]),
        "chunk" => ("chunk", vec![req("chunks"), int("dim", 0)]),
        "split" => ("split", vec![req("split_size_or_sections"), int("dim", 0)]),
        "add" => ("add", vec![]),
        "matmul" | "bmm" => ("matmul", vec![]),
        "mul" => ("mul", vec![]),
        "cat" | "concat" => ("cat", vec![int("dim", 0)]),
        "max_pool1d" | "max_pool2d" => (
            if name == "max_pool1d" {
                "MaxPool1d"
            } else {
                "MaxPool2d"
            },
            vec![
                req("kernel_size"),
                none("stride"),
                int("padding", 0),
                int("dilation", 1),
                boolean("ceil_mode", false),
                boolean("return_indices", false),
            ],
        ),
        "avg_pool2d" => (
            "AvgPool2d",
            vec![
                req("kernel_size"),
                none("stride"),
                int("padding", 0),
                boolean("ceil_mode", false),
                boolean("count_include_pad", true),
                none("divisor_override"),
            ],
        ),
        "avg_pool1d" => (
            "AvgPool1d",
            vec![
                req("kernel_size"),
                none("stride"),
                int("padding", 0),
                boolean("ceil_mode", false),
                boolean("count_include_pad", true),
            ],
        ),
        "adaptive_avg_pool1d" => ("AdaptiveAvgPool1d", vec![req("output_size")]),
        "adaptive_avg_pool2d" => ("AdaptiveAvgPool2d", vec![req("output_size")]),
        "adaptive_max_pool1d" => (
            "AdaptiveMaxPool1d",
            vec![req("output_size"), boolean("return_indices", false)],
        ),
        "adaptive_max_pool2d" => (
            "AdaptiveMaxPool2d",
            vec![req("output_size"), boolean("return_indices", false)],
        ),
        "layer_norm" => (
            "layer_norm",
            vec![
                req("normalized_shape"),
                none("weight"),
                none("bias"),
                float("eps", 1e-5),
            ],
        ),
        "group_norm" => (
            "group_norm",
            vec![
                req("num_groups"),
                none("weight"),
                none("bias"),
                float("eps", 1e-5),
            ],
        ),
        "interpolate" | "upsample" => (
            "Upsample",
            vec![
                none("size"),
                none("scale_factor"),
                string("mode", "nearest"),
                none("align_corners"),
                none("recompute_scale_factor"),
                boolean("antialias", false),
            ],
        ),
        "upsample_nearest" => (
            "UpsamplingNearest2d",
            vec![none("size"), none("scale_factor")],
        ),
        "upsample_bilinear" => (
            "UpsamplingBilinear2d",
            vec![none("size"), none("scale_factor")],
        ),
        "pad" => (
            "pad",
            vec![req("pad"), string("mode", "constant"), float("value", 0.0)],
        ),
        "dropout" | "dropout1d" | "dropout2d" => (
            "Dropout",
            vec![
                float("p", 0.5),
                boolean("training", false),
                boolean("inplace", false),
            ],
        ),
        _ => return None,
    })
}

/// The names of the tensor arguments a function takes before its other arguments.
pub fn tensor_params(function: &str) -> &'static [&'static str] {
    match function {
        "add" | "mul" | "matmul" | "bmm" => &["input", "other"],
        "cat" | "concat" => &["tensors"],
        _ => &["input"],
    }
}

/// Arguments matched against a signature: every parameter has a value.
pub struct Args {
    callee: String,
    values: Vec<(&'static str, Lit)>,
}

impl Args {
    /// Matches positional and keyword arguments to `params` as Python would.
    pub fn bind(
        callee: &str,
        params: &[Param],
        positional: Vec<Lit>,
        keywords: Vec<(String, Lit)>,
    ) -> Result<Args, String> {
        if positional.len() > params.len() {
            return Err(format!(
                "{callee}() takes {} argument(s), {} given",
                params.len(),
                positional.len()
            ));
        }
        let mut slots: Vec<Option<Lit>> = vec![None; params.len()];
        for (i, v) in positional.into_iter().enumerate() {
            slots[i] = Some(v);
        }
        for (key, v) in keywords {
            let Some(i) = params.iter().position(|p| p.0 == key) else {
                let names: Vec<&str> = params.iter().map(|p| p.0).collect();
                return Err(format!(
                    "{callee}() got an unexpected keyword argument '{key}' (it takes: {})",
                    names.join(", ")
                ));
            };
            if slots[i].is_some() {
                return Err(format!(
                    "{callee}() got multiple values for argument '{key}'"
                ));
            }
            slots[i] = Some(v);
        }
        let mut values = Vec::new();
        for ((name, default), slot) in params.iter().zip(slots) {
            match slot.or_else(|| default.clone()) {
                Some(v) => values.push((*name, v)),
                None => {
                    return Err(format!(
                        "{callee}() is missing the required argument '{name}'"
                    ))
                }
            }
        }
        Ok(Args {
            callee: callee.to_string(),
            values,
        })
    }

    pub(super) fn get(&self, name: &str) -> &Lit {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap_or(&Lit::None)
    }

    fn bad(&self, name: &str, want: &str) -> String {
        format!(
            "{}(): argument '{name}' must be {want}, got {}",
            self.callee,
            self.get(name).describe()
        )
    }

    pub(super) fn int(&self, name: &str) -> Result<i64, String> {
        match self.get(name) {
            Lit::Int(i) => Ok(*i),
            _ => Err(self.bad(name, "an integer")),
        }
    }

    /// A positive integer.
    pub(super) fn size(&self, name: &str) -> Result<usize, String> {
        match self.get(name) {
            Lit::Int(i) if *i > 0 => Ok(*i as usize),
            _ => Err(self.bad(name, "a positive integer")),
        }
    }

    fn float(&self, name: &str) -> Result<f64, String> {
        match self.get(name) {
            Lit::Float(f) => Ok(*f),
            Lit::Int(i) => Ok(*i as f64),
            _ => Err(self.bad(name, "a number")),
        }
    }

    pub(super) fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            Lit::Bool(b) => Ok(*b),
            _ => Err(self.bad(name, "True or False")),
        }
    }

    fn string(&self, name: &str) -> Result<&str, String> {
        match self.get(name) {
            Lit::Str(s) => Ok(s),
            _ => Err(self.bad(name, "a string")),
        }
    }

    pub(super) fn ints(&self, name: &str) -> Result<Vec<i64>, String> {
        match self.get(name) {
            Lit::Int(i) => Ok(vec![*i]),
            Lit::Tuple(items) => items
                .iter()
                .map(|l| match l {
                    Lit::Int(i) => Ok(*i),
                    _ => Err(self.bad(name, "a tuple of integers")),
                })
                .collect(),
            _ => Err(self.bad(name, "an integer or a tuple of integers")),
        }
    }

    /// An integer or a `rank`-tuple of integers >= `min`, one per spatial axis.
    fn per_axis(&self, name: &str, rank: usize, min: i64) -> Result<Vec<usize>, String> {
        let v = self.ints(name)?;
        let v = if v.len() == 1 { vec![v[0]; rank] } else { v };
        if v.len() != rank || v.iter().any(|&d| d < min) {
            let want = if min > 0 { "positive" } else { "non-negative" };
            return Err(self.bad(name, &format!("one {want} integer or a tuple of {rank}")));
        }
        Ok(v.into_iter().map(|d| d as usize).collect())
    }

    /// Rejects a value PyTorch accepts but eval-mode inference does not support.
    fn require(&self, name: &str, supported: Lit, why: &str) -> Result<(), String> {
        if *self.get(name) == supported {
            Ok(())
        } else {
            Err(format!(
                "{}(): {name}={} is not supported ({why})",
                self.callee,
                self.get(name).describe()
            ))
        }
    }
}

/// Builds the op a module constructor or function denotes. `kind` is a module name from
/// [`module_signature`] or one of the layout functions (`flatten`, `reshape`, `permute`, `add`,
/// `mul`, `cat`, `pad`).
pub fn build(kind: &str, a: &Args) -> Result<Op, String> {
    Ok(match kind {
        "Conv1d" | "Conv2d" => Op::Conv(conv(kind, a)?),
        "ConvTranspose1d" | "ConvTranspose2d" => Op::ConvTranspose(conv_transpose(kind, a)?),
        "GRU" | "LSTM" => Op::Recurrent(recurrent(kind, a)?),
        "Linear" => Op::Linear(Linear {
            in_features: a.size("in_features")?,
            out_features: a.size("out_features")?,
            bias: a.flag("bias")?,
        }),
        "BatchNorm1d" | "BatchNorm2d" => {
            a.require(
                "affine",
                Lit::Bool(true),
                "a state_dict without weight and bias",
            )?;
            a.require(
                "track_running_stats",
                Lit::Bool(true),
                "eval mode needs running statistics",
            )?;
            let eps = eps(a)?;
            a.float("momentum")?;
            Op::BatchNorm(BatchNorm {
                rank: if kind == "BatchNorm1d" { 1 } else { 2 },
                num_features: a.size("num_features")?,
                eps,
            })
        }
        "LayerNorm" | "layer_norm" => Op::LayerNorm(layer_norm(kind, a)?),
        "GroupNorm" | "group_norm" => Op::GroupNorm(group_norm(kind, a)?),
        "ReLU" | "ReLU6" | "SiLU" | "Hardswish" | "Hardsigmoid" | "Sigmoid" | "Tanh"
        | "LeakyReLU" | "GELU" => Op::Activation(activation(kind, a)?),
        "PReLU" => {
            a.float("init")?;
            Op::PRelu(PRelu {
                num_parameters: a.size("num_parameters")?,
            })
        }
        "Softmax" => match a.get("dim") {
            Lit::Int(_) => Op::Softmax(Softmax { dim: a.int("dim")? }),
            _ => return Err(a.bad("dim", "an integer (implicit dims are ambiguous; say dim=1)")),
        },
        "MaxPool1d" | "MaxPool2d" | "AvgPool1d" | "AvgPool2d" => Op::Pool(pool(kind, a)?),
        "AdaptiveAvgPool1d" | "AdaptiveAvgPool2d" | "AdaptiveMaxPool1d" | "AdaptiveMaxPool2d" => {
            Op::AdaptivePool(adaptive_pool(kind, a)?)
        }
        "Upsample" | "UpsamplingNearest2d" | "UpsamplingBilinear2d" => {
            Op::Upsample(upsample(kind, a)?)
        }
        "ZeroPad2d" => Op::ZeroPad(ZeroPad {
            padding: four_sided(a, "padding")?,
        }),
        "pad" => {
            a.require("mode", Lit::Str("constant".into()), "only zero padding")?;
            if a.float("value")? != 0.0 {
                return Err(format!("{}(): only value=0 is supported", a.callee));
            }
            Op::ZeroPad(ZeroPad {
                padding: four_sided(a, "pad")?,
            })
        }
        "Flatten" | "flatten" => Op::Flatten(Flatten {
            start_dim: a.int("start_dim")?,
            end_dim: a.int("end_dim")?,
        }),
        "reshape" => Op::Reshape(Reshape {
            shape: a.ints("shape")?,
        }),
        "permute" => {
            let dims = a.ints("dims")?;
            if dims.iter().any(|&d| d < 0) {
                return Err(a.bad("dims", "non-negative axes"));
            }
            Op::Permute(Permute {
                dims: dims.into_iter().map(|d| d as usize).collect(),
            })
        }
        "add" => Op::Binary(Binary {
            kind: BinaryKind::Add,
        }),
        "mul" => Op::Binary(Binary {
            kind: BinaryKind::Mul,
        }),
        "cat" => Op::Concat(Concat { dim: a.int("dim")? }),
        "matmul" => Op::MatMul(MatMul),
        "Dropout" => {
            let p = a.float("p")?;
            if !(0.0..=1.0).contains(&p) {
                return Err(a.bad("p", "a probability between 0 and 1"));
            }
            Op::Dropout
        }
        _ => return Err(format!("{kind} is not a supported op")),
    })
}

fn activation(kind: &str, a: &Args) -> Result<Activation, String> {
    Ok(match kind {
        "ReLU" => Activation::Relu,
        "ReLU6" => Activation::Relu6,
        "SiLU" => Activation::Silu,
        "Hardswish" => Activation::Hardswish,
        "Hardsigmoid" => Activation::Hardsigmoid,
        "Sigmoid" => Activation::Sigmoid,
        "Tanh" => Activation::Tanh,
        "LeakyReLU" => Activation::LeakyRelu {
            negative_slope: a.float("negative_slope")? as f32,
        },
        _ => match a.string("approximate")? {
            "none" => Activation::Gelu { tanh: false },
            "tanh" => Activation::Gelu { tanh: true },
            _ => return Err(a.bad("approximate", "'none' or 'tanh'")),
        },
    })
}

/// `(left, right, top, bottom)` as ZeroPad2d and F.pad take it; an integer pads all sides and a
/// pair `(left, right)` pads the last axis only.
fn four_sided(a: &Args, name: &str) -> Result<Padding, String> {
    let v = a.ints(name)?;
    if v.iter().any(|&p| p < 0) {
        return Err(a.bad(name, "non-negative padding"));
    }
    let v: Vec<usize> = v.into_iter().map(|p| p as usize).collect();
    Ok(match v.len() {
        1 => Padding {
            left: v[0],
            right: v[0],
            top: v[0],
            bottom: v[0],
        },
        2 => Padding {
            left: v[0],
            right: v[1],
            top: 0,
            bottom: 0,
        },
        4 => Padding {
            left: v[0],
            right: v[1],
            top: v[2],
            bottom: v[3],
        },
        _ => {
            return Err(a.bad(
                name,
                "an integer, (left, right) or (left, right, top, bottom)",
            ))
        }
    })
}

fn conv(kind: &str, a: &Args) -> Result<Conv, String> {
    let rank = if kind == "Conv1d" { 1 } else { 2 };
    a.require(
        "padding_mode",
        Lit::Str("zeros".into()),
        "only zero padding",
    )?;
    let (in_channels, out_channels, groups) = (
        a.size("in_channels")?,
        a.size("out_channels")?,
        a.size("groups")?,
    );
    if in_channels % groups != 0 || out_channels % groups != 0 {
        return Err(format!(
            "{kind}(): in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
        ));
    }
    let kernel = to2(rank, &a.per_axis("kernel_size", rank, 1)?, 1);
    let stride = to2(rank, &a.per_axis("stride", rank, 1)?, 1);
    let dilation = to2(rank, &a.per_axis("dilation", rank, 1)?, 1);
    let padding = match a.get("padding") {
        Lit::Str(s) if s == "valid" => Padding::default(),
        Lit::Str(s) if s == "same" => {
            if stride != [1, 1] {
                return Err(format!("{kind}(): padding='same' is not supported for strided convolutions (PyTorch refuses it too; pad explicitly with ZeroPad2d or a 4-tuple)"));
            }
            let split = |axis: usize| {
                let total = dilation[axis] * (kernel[axis] - 1);
                (total / 2, total - total / 2)
            };
            let ((top, bottom), (left, right)) = (split(0), split(1));
            Padding {
                top,
                bottom,
                left,
                right,
            }
        }
        Lit::Str(_) => return Err(a.bad("padding", "an integer, a tuple, 'same' or 'valid'")),
        Lit::Tuple(items) if items.len() == 4 && rank == 2 => four_sided(a, "padding")?,
        _ => {
            let p = to2(rank, &a.per_axis("padding", rank, 0)?, 0);
            Padding {
                top: p[0],
                bottom: p[0],
                left: p[1],
                right: p[1],
            }
        }
    };
    Ok(Conv {
        rank,
        in_channels,
        out_channels,
        kernel,
        stride,
        dilation,
        padding,
        groups,
        bias: a.flag("bias")?,
    })
}

fn conv_transpose(kind: &str, a: &Args) -> Result<ConvTranspose, String> {
    let rank = if kind.ends_with("1d") { 1 } else { 2 };
    a.require(
        "padding_mode",
        Lit::Str("zeros".into()),
        "only zero padding",
    )?;
    let (in_channels, out_channels, groups) = (
        a.size("in_channels")?,
        a.size("out_channels")?,
        a.size("groups")?,
    );
    if in_channels % groups != 0 || out_channels % groups != 0 {
        return Err(format!(
            "{kind}(): in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
        ));
    }
    Ok(ConvTranspose {
        rank,
        in_channels,
        out_channels,
        kernel: to2(rank, &a.per_axis("kernel_size", rank, 1)?, 1),
        stride: to2(rank, &a.per_axis("stride", rank, 1)?, 1),
        dilation: to2(rank, &a.per_axis("dilation", rank, 1)?, 1),
        padding: to2(rank, &a.per_axis("padding", rank, 0)?, 0),
        output_padding: to2(rank, &a.per_axis("output_padding", rank, 0)?, 0),
        groups,
        bias: a.flag("bias")?,
    })
}

/// A positive `eps`.
fn eps(a: &Args) -> Result<f64, String> {
    let eps = a.float("eps")?;
    if eps.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(a.bad("eps", "a positive number"));
    }
    Ok(eps)
}

/// The functional forms take weights as tensors; a spec has constants only, so they come
/// without (`weight=None, bias=None`): declare the module for an affine normalization.
fn no_affine(a: &Args) -> Result<(), String> {
    for name in ["weight", "bias"] {
        a.require(
            name,
            Lit::None,
            "declare the LayerNorm / GroupNorm module to have weights",
        )?;
    }
    Ok(())
}

/// `LayerNorm(normalized_shape, eps, elementwise_affine, bias)`, or `layer_norm(x,
/// normalized_shape, eps=...)` without weights.
fn layer_norm(kind: &str, a: &Args) -> Result<LayerNorm, String> {
    let shape = a.ints("normalized_shape")?;
    if shape.is_empty() || shape.iter().any(|&d| d < 1) {
        return Err(a.bad("normalized_shape", "positive sizes"));
    }
    let (affine, bias) = if kind == "layer_norm" {
        no_affine(a)?;
        (false, false)
    } else {
        let affine = a.flag("elementwise_affine")?;
        (affine, affine && a.flag("bias")?)
    };
    Ok(LayerNorm {
        shape: shape.into_iter().map(|d| d as usize).collect(),
        eps: eps(a)?,
        affine,
        bias,
    })
}

/// `GRU` / `LSTM`: the module's first node (layer 0, forward); the spec's call adds the others.
/// `dropout` acts between layers in training only, so any value is taken.
fn recurrent(kind: &str, a: &Args) -> Result<Recurrent, String> {
    let num_layers = a.size("num_layers")?;
    if !(1..=MAX_RECURRENT_LAYERS).contains(&num_layers) {
        return Err(a.bad("num_layers", &format!("1 to {MAX_RECURRENT_LAYERS}")));
    }
    if kind == "LSTM" {
        a.require("proj_size", Lit::Int(0), "no projection (proj_size=0)")?;
    }
    a.float("dropout")?;
    Ok(Recurrent {
        cell: if kind == "GRU" { Cell::Gru } else { Cell::Lstm },
        input_size: a.size("input_size")?,
        hidden_size: a.size("hidden_size")?,
        bias: a.flag("bias")?,
        batch_first: a.flag("batch_first")?,
        layer: 0,
        reverse: false,
        num_layers,
        bidirectional: a.flag("bidirectional")?,
    })
}

/// `GroupNorm(num_groups, num_channels, eps, affine)`, or `group_norm(x, num_groups, eps=...)`
/// without weights (its channel count is the input's).
fn group_norm(kind: &str, a: &Args) -> Result<GroupNorm, String> {
    let groups = a.size("num_groups")?;
    let (channels, affine) = if kind == "group_norm" {
        no_affine(a)?;
        (None, false)
    } else {
        (Some(a.size("num_channels")?), a.flag("affine")?)
    };
    Ok(GroupNorm {
        groups,
        channels,
        eps: eps(a)?,
        affine,
    })
}

/// `Upsample` / `interpolate` (`UpsamplingNearest2d`: nearest; `UpsamplingBilinear2d`: bilinear
/// with `align_corners=True`): exactly one of `size` and `scale_factor`, each an integer (a number
/// for the factor) or one per spatial axis.
fn upsample(kind: &str, a: &Args) -> Result<Upsample, String> {
    let (mode, align_corners) = match kind {
        "UpsamplingNearest2d" => (ResampleMode::Nearest, false),
        "UpsamplingBilinear2d" => (ResampleMode::Bilinear, true),
        _ => {
            let mode = match a.string("mode")? {
                "nearest" => ResampleMode::Nearest,
                "linear" => ResampleMode::Linear,
                "bilinear" => ResampleMode::Bilinear,
                other => {
                    return Err(format!(
                        "{}(): mode='{other}' is not supported (nearest, linear and bilinear are)",
                        a.callee
                    ))
                }
            };
            let align = match a.get("align_corners") {
                Lit::None => false,
                _ if mode == ResampleMode::Nearest => {
                    return Err(format!(
                        "{}(): align_corners can only be set with mode 'linear' or 'bilinear'",
                        a.callee
                    ))
                }
                _ => a.flag("align_corners")?,
            };
            (mode, align)
        }
    };
    if *a.get("antialias") == Lit::Bool(true) {
        return Err(format!("{}(): antialias=True is not supported", a.callee));
    }
    let recompute_scale_factor = match a.get("recompute_scale_factor") {
        Lit::None => false,
        _ => a.flag("recompute_scale_factor")?,
    };
    let target = match (a.get("size"), a.get("scale_factor")) {
        (Lit::None, Lit::None) => {
            return Err(format!(
                "{}(): either size or scale_factor should be defined",
                a.callee
            ))
        }
        (Lit::None, factor) => {
            let one = |l: &Lit| match l {
                Lit::Float(f) if f.is_finite() && *f > 0.0 => Ok(*f),
                Lit::Int(i) if *i > 0 => Ok(*i as f64),
                _ => Err(a.bad("scale_factor", "a positive number or a tuple of them")),
            };
            Target::ScaleFactor(match factor {
                Lit::Tuple(items) if !items.is_empty() => {
                    items.iter().map(one).collect::<Result<_, _>>()?
                }
                single => vec![one(single)?],
            })
        }
        (_, Lit::None) => {
            let sizes = a.ints("size")?;
            if sizes.is_empty() || sizes.iter().any(|&d| d < 1) {
                return Err(a.bad("size", "a positive integer or a tuple of them"));
            }
            Target::Size(sizes.into_iter().map(|d| d as usize).collect())
        }
        _ => {
            return Err(format!(
                "{}(): only one of size or scale_factor should be defined",
                a.callee
            ))
        }
    };
    Ok(Upsample {
        mode,
        target,
        align_corners,
        recompute_scale_factor,
    })
}

/// `[fill, v]` for a 1-d pool or convolution's one axis, `[v0, v1]` for a 2-d one.
fn to2(rank: usize, v: &[usize], fill: usize) -> [usize; 2] {
    if rank == 1 {
        [fill, v[0]]
    } else {
        [v[0], v[1]]
    }
}

fn pool(kind: &str, a: &Args) -> Result<Pool, String> {
    let rank = if kind.ends_with("1d") { 1 } else { 2 };
    let kernel = a.per_axis("kernel_size", rank, 1)?;
    let stride = match a.get("stride") {
        Lit::None => kernel.clone(),
        Lit::Tuple(t) if t.is_empty() => kernel.clone(),
        _ => a.per_axis("stride", rank, 1)?,
    };
    let padding = a.per_axis("padding", rank, 0)?;
    let max = kind.starts_with("Max");
    let (dilation, count_include_pad) = if max {
        a.require(
            "return_indices",
            Lit::Bool(false),
            "indices are not an inference output",
        )?;
        (a.per_axis("dilation", rank, 1)?, false)
    } else {
        if rank == 2 {
            a.require("divisor_override", Lit::None, "not supported")?;
        }
        (vec![1; rank], a.flag("count_include_pad")?)
    };
    Ok(Pool {
        kind: if max { PoolKind::Max } else { PoolKind::Avg },
        rank,
        kernel: to2(rank, &kernel, 1),
        stride: to2(rank, &stride, 1),
        padding: to2(rank, &padding, 0),
        dilation: to2(rank, &dilation, 1),
        ceil_mode: a.flag("ceil_mode")?,
        count_include_pad,
    })
}

/// `AdaptiveAvgPool1d/2d`, `AdaptiveMaxPool1d/2d`: `output_size` is an integer or one entry per
/// axis, `None` keeping the input's size on that axis.
fn adaptive_pool(kind: &str, a: &Args) -> Result<AdaptivePool, String> {
    let rank = if kind.ends_with("1d") { 1 } else { 2 };
    let max = kind.starts_with("AdaptiveMax");
    if max {
        a.require(
            "return_indices",
            Lit::Bool(false),
            "indices are not an inference output",
        )?;
    }
    let want = if rank == 1 {
        "a positive integer"
    } else {
        "an integer or a pair"
    };
    let one = |l: &Lit| match l {
        Lit::Int(i) if *i > 0 => Ok(Some(*i as usize)),
        Lit::None => Ok(None),
        _ => Err(a.bad("output_size", "positive integers or None")),
    };
    let sizes = match a.get("output_size") {
        Lit::Int(i) if *i > 0 => vec![Some(*i as usize); rank],
        Lit::Tuple(items) if items.len() == rank => {
            items.iter().map(one).collect::<Result<_, _>>()?
        }
        _ => return Err(a.bad("output_size", want)),
    };
    let output = if rank == 1 {
        if sizes[0].is_none() {
            return Err(a.bad("output_size", want));
        }
        [Some(1), sizes[0]]
    } else {
        [sizes[0], sizes[1]]
    };
    Ok(AdaptivePool {
        kind: if max { PoolKind::Max } else { PoolKind::Avg },
        rank,
        output,
    })
}
