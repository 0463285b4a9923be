//! GPU tensors (a buffer with a shape and an element type) and the arena that allocates a model's activations.

use super::{Buffer, Gpu};
use crate::error::Result;

/// Element type of a tensor in GPU memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    /// IEEE half, stored raw; read in kernels through the `W4` prelude (packed `u32` or `f16`).
    F16,
    U32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
        }
    }
}

/// A buffer with a row-major shape.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub buf: Buffer,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl Tensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> u64 {
        (self.numel() * self.dtype.size()) as u64
    }

    /// Size of dimension `i`; negative indices count from the end.
    pub fn dim(&self, i: isize) -> usize {
        let i = if i < 0 { self.shape.len() as isize + i } else { i };
        self.shape[i as usize]
    }

    /// An fp16 tensor from raw little-endian half bytes.
    pub fn from_f16_bytes(gpu: &Gpu, label: &str, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        debug_assert_eq!(bytes.len(), shape.iter().product::<usize>() * 2);
        Ok(Tensor { buf: gpu.upload(label, bytes)?, shape: shape.to_vec(), dtype: DType::F16 })
    }

    /// An fp16 tensor from f32 values (rounded to nearest half).
    pub fn from_f32_as_f16(gpu: &Gpu, label: &str, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let h: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
        Self::from_f16_bytes(gpu, label, shape, bytemuck::cast_slice(&h))
    }

    /// An f32 tensor from values.
    pub fn from_f32(gpu: &Gpu, label: &str, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Ok(Tensor { buf: gpu.upload(label, bytemuck::cast_slice(data))?, shape: shape.to_vec(), dtype: DType::F32 })
    }
}

/// Allocates the activation buffers of one model plan (fixed batch and resolution) and counts their bytes. Buffers
/// live as long as the plan and are reused by every forward; nothing is allocated while sampling.
#[derive(Default)]
pub struct Arena {
    bytes: u64,
    count: usize,
}

impl Arena {
    pub fn new() -> Self {
        Self::default()
    }

    /// A zero-filled f32 tensor.
    pub fn f32(&mut self, gpu: &Gpu, label: &str, shape: &[usize]) -> Result<Tensor> {
        self.alloc(gpu, label, shape, DType::F32)
    }

    /// A zero-filled tensor of any element type.
    pub fn alloc(&mut self, gpu: &Gpu, label: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = (shape.iter().product::<usize>() * dtype.size()) as u64;
        let buf = gpu.storage(label, bytes)?;
        self.bytes += buf.size();
        self.count += 1;
        Ok(Tensor { buf, shape: shape.to_vec(), dtype })
    }

    /// Bytes allocated so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Buffers allocated so far.
    pub fn count(&self) -> usize {
        self.count
    }
}
