//! The architectures as plain data: configs and presets, each model's tensor manifest (names and shapes as the
//! checkpoints write them) and the fixed position embedding. No GPU and no I/O: the weights planner (`weights`) and
//! the model graphs (`model`) both read it, so neither needs the other.

mod dit;
mod vae;

pub use dit::{dit_tensors, null_class, pos_embed_2d, DitConfig, DIT_SIZES, FREQ_DIM, MAX_HEAD_DIM};
pub use vae::{vae_tensors, VaeConfig, SD_SCALING_FACTOR};

/// One tensor of a model: its name and shape as stored (fp16 in a model directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Bytes as fp16.
    pub fn bytes(&self) -> u64 {
        self.shape.iter().product::<usize>() as u64 * 2
    }
}
