//! The built-in catalog: networks a user can name instead of writing a spec.
//!
//! In: a catalog name. Out: the spec text (the small MLPerf Tiny networks and LeNet-5 are spec
//! files in `host-tool/catalog/`; the torchvision networks are generated here as spec text from
//! torchvision's configuration tables) and the parsed, unbound graph. Every entry is defined
//! exactly like its PyTorch reference, so its `state_dict()` binds untouched.

mod torchvision;

use super::spec::closest_hint;
use super::{parse_spec, Graph, SpecError};

/// Whose conventions an entry follows (see `docs/SPEC.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// Symmetric padding, BatchNorm eps 1e-5.
    PyTorch,
    /// The TensorFlow/Keras reference: 'same' padding at stride 2 is asymmetric (ZeroPad2d),
    /// BatchNorm eps 1e-3.
    Keras,
    /// torchvision's own definition and key names.
    Torchvision,
}

#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub name: &'static str,
    pub description: &'static str,
    pub convention: Convention,
    source: Source,
}

#[derive(Clone, Copy, Debug)]
enum Source {
    Text(&'static str),
    Generated(fn() -> String),
}

/// Every catalog entry, in the order `nnblob archs` lists them.
pub const ENTRIES: &[Entry] = &[
    Entry {
        name: "resnet8",
        description: "MLPerf Tiny image classification, ResNet-8 (CIFAR-10)",
        convention: Convention::PyTorch,
        source: Source::Text(include_str!("../../../catalog/resnet8.nnspec")),
    },
    Entry {
        name: "dscnn",
        description: "MLPerf Tiny keyword spotting, DS-CNN small (12 words)",
        convention: Convention::Keras,
        source: Source::Text(include_str!("../../../catalog/dscnn.nnspec")),
    },
    Entry {
        name: "mobilenet_v1_025",
        description: "MLPerf Tiny visual wake words, MobileNetV1 0.25",
        convention: Convention::Keras,
        source: Source::Text(include_str!("../../../catalog/mobilenet_v1_025.nnspec")),
    },
    Entry {
        name: "fc_autoencoder",
        description: "MLPerf Tiny anomaly detection, FC autoencoder",
        convention: Convention::Keras,
        source: Source::Text(include_str!("../../../catalog/fc_autoencoder.nnspec")),
    },
    Entry {
        name: "lenet5",
        description: "LeNet-5 (ReLU, max pooling), 32x32 grey",
        convention: Convention::PyTorch,
        source: Source::Text(include_str!("../../../catalog/lenet5.nnspec")),
    },
    Entry {
        name: "resnet18",
        description: "torchvision resnet18 (ImageNet)",
        convention: Convention::Torchvision,
        source: Source::Generated(torchvision::resnet18),
    },
    Entry {
        name: "mobilenet_v2",
        description: "torchvision mobilenet_v2 (ImageNet)",
        convention: Convention::Torchvision,
        source: Source::Generated(torchvision::mobilenet_v2),
    },
    Entry {
        name: "vgg11_bn",
        description: "torchvision vgg11_bn (ImageNet)",
        convention: Convention::Torchvision,
        source: Source::Generated(torchvision::vgg11_bn),
    },
    Entry {
        name: "vgg16",
        description: "torchvision vgg16 (ImageNet)",
        convention: Convention::Torchvision,
        source: Source::Generated(torchvision::vgg16),
    },
];

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("no architecture '{name}' in the catalog{hint} (known: {known}); or give a spec file")]
    Unknown {
        name: String,
        hint: String,
        known: String,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
}

impl Entry {
    /// The entry's spec text.
    pub fn spec(&self) -> String {
        match self.source {
            Source::Text(t) => t.to_string(),
            Source::Generated(f) => f(),
        }
    }

    /// The parsed, unbound graph.
    pub fn graph(&self) -> Result<Graph, SpecError> {
        parse_spec(&self.spec(), &format!("<catalog:{}>", self.name), self.name)
    }
}

pub fn entry(name: &str) -> Result<&'static Entry, CatalogError> {
    ENTRIES.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = ENTRIES.iter().map(|e| e.name).collect();
        CatalogError::Unknown {
            name: name.to_string(),
            hint: closest_hint(name, &names),
            known: names.join(", "),
        }
    })
}

/// The unbound graph of catalog entry `name`.
pub fn graph(name: &str) -> Result<Graph, CatalogError> {
    Ok(entry(name)?.graph()?)
}
