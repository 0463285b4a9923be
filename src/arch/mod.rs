//! The architectures as plain data: configs and presets, each model's tensor manifest (names and shapes as the
//! checkpoints write them) and the fixed position embedding. No GPU and no I/O: the weights planner (`weights`) and
//! the model graphs (`model`) both read it, so neither needs the other.

mod dit;
mod vae;

pub use dit::{
    dit_tensors, null_class, pos_embed_2d, DitBlockTensors, DitConfig, DitTensors, Family, LatentStats, DIT_SIZES,
    FREQ_DIM, LATENT_VAR_EPS, MAX_HEAD_DIM,
};
pub use vae::{vae_tensors, ResnetTensors, UpBlockTensors, VaeAttnTensors, VaeConfig, VaeTensors, SD_SCALING_FACTOR};

use crate::error::Result;

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

/// Where an architecture's tensor tree ([`DitTensors`], [`VaeTensors`]) takes its tensors from, by name and shape. The
/// model graphs load through the GPU weight store (`model::GpuWeights`); the manifest of a model directory is the same
/// walk through a [`Recorder`]. So the names and shapes a model loads are written once.
pub trait TensorSource {
    type Tensor;
    /// Tensor `name` of exactly `shape`, or an error naming it.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Self::Tensor>;
}

/// A layer's `{name}.weight` and `{name}.bias`.
#[derive(Debug)]
pub struct WeightBias<T> {
    pub weight: T,
    pub bias: T,
}

impl<T> WeightBias<T> {
    /// Takes `{name}.weight` of `shape` and `{name}.bias` of `[shape[0]]`.
    pub fn take<S: TensorSource<Tensor = T>>(src: &mut S, name: &str, shape: &[usize]) -> Result<WeightBias<T>> {
        let weight = src.take(&format!("{name}.weight"), shape)?;
        let bias = src.take(&format!("{name}.bias"), &shape[..1])?;
        Ok(WeightBias { weight, bias })
    }
}

/// A [`TensorSource`] that hands out nothing and writes down what was asked for: the manifest, in walk order.
#[derive(Default)]
pub struct Recorder(pub Vec<TensorSpec>);

impl TensorSource for Recorder {
    type Tensor = ();
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<()> {
        self.0.push(TensorSpec { name: name.to_string(), shape: shape.to_vec() });
        Ok(())
    }
}

/// The manifest a tensor-tree walk asks for (a walk through a [`Recorder`] cannot fail).
fn record<T>(walk: impl FnOnce(&mut Recorder) -> Result<T>) -> Vec<TensorSpec> {
    let mut r = Recorder::default();
    walk(&mut r).expect("a recorder hands out every tensor");
    r.0
}
