//! What a checkpoint says about how it was trained and saved — the mistakes that only show on
//! the device: BatchNorms whose running statistics were never updated, training-only state
//! saved next to the weights, and values outside the weights left unbuilt.
//!
//! In: a read [`Checkpoint`]. Out: findings, each one sentence. The blob is always eval-mode (its
//! BatchNorms normalise with the running statistics, as `model.eval()` does), so a BatchNorm never
//! run in train mode normalises with mean 0 and variance 1, not with the data's statistics.

use super::{Checkpoint, Tensor};

/// One BatchNorm whose running statistics are still PyTorch's initial values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntrainedBatchNorm {
    /// The module's key prefix (`layer1.0.bn1`).
    pub module: String,
    /// Why: `num_batches_tracked == 0`, or the statistics at 0 and 1.
    pub evidence: &'static str,
}

impl std::fmt::Display for UntrainedBatchNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BatchNorm '{}': running statistics at their initial values ({}): the blob normalises \
             with mean 0 and variance 1, as model.eval() would; BatchNorm learns them in \
             model.train(), so save the model after training",
            self.module, self.evidence
        )
    }
}

/// Every BatchNorm of the state_dict (a `P.running_mean` with a `P.running_var`) that never saw a
/// batch in train mode: `P.num_batches_tracked` is 0, or `running_mean` is all 0 and
/// `running_var` all 1 (what `reset_running_stats` sets).
pub fn untrained_batchnorms(ckpt: &Checkpoint) -> Vec<UntrainedBatchNorm> {
    let find = |name: &str| ckpt.tensors.iter().find(|t| t.name == name);
    let all = |t: &Tensor, v: f32| t.numel() > 0 && t.to_f32().iter().all(|&x| x == v);
    ckpt.tensors
        .iter()
        .filter_map(|t| {
            let module = t.name.strip_suffix(".running_mean")?;
            let var = find(&format!("{module}.running_var"))?;
            let counter = find(&format!("{module}.num_batches_tracked"));
            let evidence = if counter.is_some_and(|c| all(c, 0.0)) {
                "num_batches_tracked is 0"
            } else if all(t, 0.0) && all(var, 1.0) {
                "running_mean all 0, running_var all 1"
            } else {
                return None;
            };
            Some(UntrainedBatchNorm {
                module: module.to_string(),
                evidence,
            })
        })
        .collect()
}

/// The note for training-only state read past (optimizer, gradient scaler, scheduler), if any:
/// `the weights are under 'model'; ignored the training-only state next to them: 'optimizer'
/// (optimizer state), ...`.
pub fn training_state_note(ckpt: &Checkpoint) -> Option<String> {
    if ckpt.training_state.is_empty() {
        return None;
    }
    let what: Vec<String> = ckpt
        .training_state
        .iter()
        .map(|(key, kind)| format!("'{key}' ({kind})"))
        .collect();
    Some(format!(
        "the weights are under '{}'; ignored the training-only state next to them: {}",
        ckpt.key.as_deref().unwrap_or_default(),
        what.join(", ")
    ))
}

/// The note for values outside the state_dict left unbuilt (enums, `pathlib` paths,
/// `defaultdict`s in Lightning's `hyper_parameters`), if any.
pub fn skipped_note(ckpt: &Checkpoint) -> Option<String> {
    let s = ckpt.skipped.as_ref()?;
    let keys: Vec<String> = s.keys.iter().map(|k| format!("'{k}'")).collect();
    let place = if keys.is_empty() {
        "outside the state_dict".to_string()
    } else {
        format!("in {} (outside the state_dict)", keys.join(", "))
    };
    Some(format!(
        "skipped the values {place} that call {}: nnblob builds no such object, and the weights do not need them",
        s.globals.join(", ")
    ))
}
