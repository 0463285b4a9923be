//! fp16 weights on the GPU, taken by name with shape checks.

use crate::arch::{TensorSource, TensorSpec};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::util::SplitMix64;
use std::collections::BTreeMap;

/// The tensors of a model directory, uploaded to the GPU; a model takes each one exactly once.
pub struct GpuWeights {
    map: BTreeMap<String, Tensor>,
}

impl GpuWeights {
    /// Weights already on the GPU, by name (`loader` fills them from a model's files).
    pub fn new(map: BTreeMap<String, Tensor>) -> GpuWeights {
        GpuWeights { map }
    }

    /// Weights made by `values(tensor)` (f32 values, rounded to fp16) for every planned tensor.
    pub fn from_values(
        gpu: &Gpu,
        tensors: &[TensorSpec],
        mut values: impl FnMut(&TensorSpec) -> Vec<f32>,
    ) -> Result<GpuWeights> {
        let mut map = BTreeMap::new();
        for p in tensors {
            let v = values(p);
            map.insert(p.name.clone(), Tensor::from_f32_as_f16(gpu, &p.name, &p.shape, &v)?);
        }
        Ok(GpuWeights { map })
    }

    /// Random fp16 weights for every planned tensor (benchmarks and full-size smoke tests): uniform with the scale of
    /// PyTorch's default init, 1/sqrt(fan_in), and unit scale for embedding tables.
    pub fn random(gpu: &Gpu, tensors: &[TensorSpec], seed: u64) -> Result<GpuWeights> {
        let mut rng = SplitMix64(seed);
        Self::from_values(gpu, tensors, |p| {
            let fan_in: usize = if p.shape.len() > 1 { p.shape[1..].iter().product() } else { p.shape[0] };
            let scale = if p.name.contains("embedding_table") { 1.0 } else { 1.0 / (fan_in as f32).sqrt() };
            (0..p.shape.iter().product::<usize>()).map(|_| rng.uniform() * scale).collect()
        })
    }

    /// Bytes of all weights held.
    pub fn bytes(&self) -> u64 {
        self.map.values().map(Tensor::bytes).sum()
    }

    /// Fails if a tensor was left over: the weights are not the model they claim to be.
    pub fn finish(self) -> Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(Error::Format {
                file: "weights".into(),
                msg: format!("unexpected tensor `{k}` ({} left over) for this model config", self.map.len()),
            }),
        }
    }
}

/// The model graphs take their tensors through the architecture's tensor tree (`arch::DitTensors::take`, ...).
impl TensorSource for GpuWeights {
    type Tensor = Tensor;

    /// Takes tensor `name`, checking its shape; each tensor can be taken once.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.map.remove(name).ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        if t.shape != shape {
            return Err(Error::Shape { name: name.to_string(), expected: shape.to_vec(), found: t.shape });
        }
        Ok(t)
    }
}
