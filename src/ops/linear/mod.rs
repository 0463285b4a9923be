//! Linear layers on fp16 weights with fused epilogues (`shaders/linear/`, the epilogue in
//! `shaders/common/epilogue.wgsl`): the layer and its choice of kernel here; the storage-buffer kernels in
//! `buffer.rs` (with the workgroup tiles of `workgroup.rs`), the texture kernels in `texture.rs`.

mod buffer;
mod texture;
mod workgroup;

use super::weight::{permute, stageable, Weight};
use crate::error::{Error, Result};
use crate::gpu::{DType, Dispatch, Gpu, Prelude, Stage, Staging, Tensor};

pub use workgroup::{wg_tile_fits, WgTile, WG_TILES};

const EPILOGUE: &str = crate::shader!("common/epilogue");

/// Uniform parameters of `linear.wgsl` (mirrors its `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LinearParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub tokens: u32,
    pub aux_stride: u32,
    pub aux_off: u32,
    pub row0: u32,
    pub _pad: u32,
}

/// A linear layer: weight [out, in] and bias [out], fp16, as `nn.Linear` stores them.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Weight,
    pub b: Tensor,
    n: usize,
    k: usize,
}

impl Linear {
    /// A layer from fp16 buffers `w` [out, in] and `b` [out].
    pub fn new(w: Tensor, b: Tensor) -> Result<Linear> {
        let [n, k] = w.shape[..] else {
            return Err(Error::Op(format!("linear weight has shape {:?}, expected [out, in]", w.shape)));
        };
        if w.dtype != DType::F16 || b.dtype != DType::F16 || b.shape != [n] {
            return Err(Error::Op(format!("linear {k}->{n}: weights must be fp16 [out, in] with bias [out]")));
        }
        Ok(Linear { weight: Weight::Buffer(w), b, n, k })
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    pub fn in_features(&self) -> usize {
        self.k
    }

    /// Whether a layer of this shape can use the texture path on this device: rows of the staged input (4K bytes)
    /// must be whole multiples of the 256-byte copy row alignment, and both textures fit the size limit.
    pub fn texture_fits(gpu: &Gpu, n: usize, k: usize) -> bool {
        n.is_multiple_of(4) && stageable(gpu, 4 * k, k / 4, n)
    }

    /// Moves the weight into the layout this device's linear kernels read best (see `gpu::KernelPath`): on the texture
    /// path a compute pass writes it into an `rgba16float` texture (no copy-alignment constraint on K).
    pub fn for_device(self, gpu: &Gpu) -> Result<Linear> {
        if gpu.report.kernels.textures() && Self::texture_fits(gpu, self.n, self.k) {
            self.to_texture(gpu)
        } else {
            Ok(self)
        }
    }

    /// [`Linear::for_device`] for a layer that runs once per sample (adaLN modulation, timestep embedding: as many
    /// rows as the batch). Without subgroups the texture kernel computes 8 rows per invocation and its cost follows
    /// its texel fetches, not the rows used: on SwiftShader at 2-8 rows it took 1.4-2.3x the register-tiled buffer
    /// kernel's time, so there such a layer keeps its storage buffer.
    pub fn for_device_per_sample(self, gpu: &Gpu) -> Result<Linear> {
        if gpu.report.subgroups {
            self.for_device(gpu)
        } else {
            Ok(self)
        }
    }

    /// The layer with its weight in an `rgba16float` texture, read by the texture kernel (the shape must pass
    /// [`Linear::texture_fits`]; benchmarks compare the paths on one device).
    pub fn to_texture(self, gpu: &Gpu) -> Result<Linear> {
        match self.weight {
            Weight::Buffer(ref w) => {
                if !Self::texture_fits(gpu, self.n, self.k) {
                    return Err(Error::Op(format!("linear {}->{} does not fit the texture path", self.k, self.n)));
                }
                let weight = permute(gpu, w, self.n, self.n, self.k, 1, true)?;
                Ok(Linear { weight, ..self })
            }
            Weight::Texture(..) => Ok(self),
        }
    }

    /// Bytes of GPU memory the weight and bias take.
    pub fn bytes(&self) -> u64 {
        (self.n * self.k * 2 + self.n * 2) as u64
    }
}

/// What happens to `x W^T + b` before it is stored.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// y = x W^T + b
    Bias,
    /// y = gelu_tanh(x W^T + b)
    Gelu,
    /// y = silu(x W^T + b)
    Silu,
    /// y += gate[m / tokens, offset..offset+N] * (x W^T + b): adaLN-Zero's gated residual, in place on y.
    /// `gate` is [batch, stride] f32.
    GatedResidual { gate: &'a Tensor, tokens: usize, offset: usize },
    /// y = x W^T + b + table[m % tokens]: `table` is [tokens, N] f32 (the position embedding).
    AddTable { table: &'a Tensor, tokens: usize },
    /// y += x W^T + b: a residual add, in place on y.
    Residual,
}

impl Epilogue<'_> {
    fn code(&self) -> f64 {
        match self {
            Epilogue::Bias => 0.0,
            Epilogue::Gelu => 1.0,
            Epilogue::Silu => 2.0,
            Epilogue::GatedResidual { .. } => 3.0,
            Epilogue::AddTable { .. } => 4.0,
            Epilogue::Residual => 5.0,
        }
    }
}

/// Which kernel computes a layer's product: the production choice, the simpler one kept beside it as its reference
/// and benchmark baseline, or (buffer weights; tests and benchmarks) one named kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinearKernel {
    /// Buffer weights: on GPUs, the workgroup-memory kernel for inputs of at least 32 rows (the tile
    /// `tune::tune_linear` recorded for the shape, else the first), else the register-tiled kernel. Texture weights: the subgroup kernel where the device
    /// has subgroups, else the plain texture kernel.
    #[default]
    Tiled,
    /// Buffer weights: 1x4 outputs per thread. Texture weights: the plain texture kernel (no subgroups).
    Simple,
    /// Buffer weights: the register-tiled kernel (4x4 outputs per thread, no workgroup memory; CPU adapters).
    /// Texture weights: as `Tiled`.
    Register,
    /// Buffer weights on a device with `shader-f16`: the register-tiled kernel multiplying in f16 (f32 sums;
    /// `shaders/linear_f16.wgsl`), for tests and benchmarks. Texture weights: as `Tiled`.
    RegisterF16,
    /// Buffer weights: the workgroup-memory kernel (`shaders/linear/workgroup.wgsl`) with tile config `WG_TILES[i]`. Texture
    /// weights: as `Tiled`.
    Workgroup(usize),
}

/// `y = epilogue(x W^T + b)` for x [M, K] (any leading dims), W [N, K], y [M, N]. One dispatch, or, for a texture
/// weight, one per chunk of rows, each staging its rows of x into a texture first.
pub fn linear(
    gpu: &Gpu,
    x: &Tensor,
    layer: &Linear,
    y: &Tensor,
    epi: Epilogue<'_>,
    kernel: LinearKernel,
) -> Result<Vec<Dispatch>> {
    let (n, k) = (layer.out_features(), layer.in_features());
    let m = x.numel() / k.max(1);
    let shape_err = |what: &str| Error::Op(format!("linear {k}->{n}: {what}"));
    if x.dim(-1) != k || x.dtype != DType::F32 {
        return Err(shape_err(&format!("input has shape {:?}", x.shape)));
    }
    if y.numel() != m * n || y.dtype != DType::F32 {
        return Err(shape_err(&format!("output has shape {:?}, expected [{m}, {n}]", y.shape)));
    }
    if k % 4 != 0 || n % 4 != 0 {
        return Err(shape_err("in and out features must be multiples of 4"));
    }
    let mut params = LinearParams { m: m as u32, n: n as u32, k: k as u32, tokens: 1, ..Default::default() };
    // Unused aux bindings get the (read-only) bias buffer: a binding must hold something.
    let aux = match epi {
        Epilogue::GatedResidual { gate, tokens, offset } => {
            let stride = gate.dim(-1);
            if tokens == 0
                || !m.is_multiple_of(tokens)
                || gate.numel() != (m / tokens) * stride
                || offset + n > stride
                || stride % 4 != 0
                || offset % 4 != 0
            {
                return Err(shape_err(&format!(
                    "gate {:?} does not fit {m} rows of {tokens} tokens at offset {offset}",
                    gate.shape
                )));
            }
            params.tokens = tokens as u32;
            params.aux_stride = stride as u32;
            params.aux_off = offset as u32;
            &gate.buf
        }
        Epilogue::AddTable { table, tokens } => {
            if tokens == 0 || table.numel() != tokens * n {
                return Err(shape_err(&format!("table {:?} is not [{tokens}, {n}]", table.shape)));
            }
            params.tokens = tokens as u32;
            &table.buf
        }
        _ => &layer.b.buf,
    };
    let product = Product { x, bias: &layer.b, aux, y, params, epi };
    match &layer.weight {
        Weight::Buffer(w) => buffer::product(gpu, &product, &w.buf, Prelude::Fp16, kernel),
        Weight::Texture(_, view) => texture::product(gpu, &product, (view, true), vec![], kernel),
    }
}

/// One product's operands and parameters, as [`linear`] and [`matmul`] hand them to a kernel: x, the bias (fp16),
/// the epilogue's auxiliary input (or any read-only buffer) and y.
struct Product<'a> {
    x: &'a Tensor,
    bias: &'a Tensor,
    aux: &'a wgpu::Buffer,
    y: &'a Tensor,
    params: LinearParams,
    epi: Epilogue<'a>,
}

/// `y = epilogue(a b^T)` for two f32 activations a [M, K] and b [N, K] (the VAE attention's products). On the
/// texture path both operands are staged into textures; otherwise the buffer kernel reads b as f32.
pub fn matmul(gpu: &Gpu, a: &Tensor, b: &Tensor, y: &Tensor, epi: Epilogue<'_>) -> Result<Vec<Dispatch>> {
    let (n, k) = (b.dim(0), b.dim(-1));
    let m = a.numel() / k.max(1);
    let err = |what: String| Error::Op(format!("matmul [{m}, {k}] x [{n}, {k}]^T: {what}"));
    if a.dim(-1) != k || a.dtype != DType::F32 || b.dtype != DType::F32 || b.numel() != n * k {
        return Err(err(format!("operands {:?} and {:?}", a.shape, b.shape)));
    }
    if y.numel() != m * n || k % 4 != 0 || n % 4 != 0 {
        return Err(err(format!("output {:?}; K and N must be multiples of 4", y.shape)));
    }
    if !matches!(epi, Epilogue::Bias | Epilogue::Residual) {
        return Err(err("only the plain and residual epilogues are supported".into()));
    }
    // A zero bias: the kernels always add one.
    let zero_bias = Tensor { buf: gpu.storage("zero bias", (n * 2) as u64)?, shape: vec![n], dtype: DType::F16 };
    let params = LinearParams { m: m as u32, n: n as u32, k: k as u32, tokens: 1, ..Default::default() };
    let product = Product { x: a, bias: &zero_bias, aux: &zero_bias.buf, y, params, epi };
    if gpu.report.kernels.textures() && stageable(gpu, 4 * k, k / 4, n) {
        let (tex, view) = gpu.staging_texture(k as u32 / 4, n as u32, Staging::SecondInput);
        let stage_b = Stage { src: b.buf.clone(), src_offset: 0, width: k as u32 / 4, rows: n as u32, dst: tex };
        texture::product(gpu, &product, (&view, false), vec![stage_b], LinearKernel::Tiled)
    } else {
        buffer::product(gpu, &product, &b.buf, Prelude::F32, LinearKernel::Tiled)
    }
}

/// Whether tile config `WG_TILES[i]` can run y [M, N] on this device ([`wg_tile_fits`]).
pub fn linear_wg_fits(gpu: &Gpu, i: usize, m: usize, n: usize) -> bool {
    WG_TILES.get(i).is_some_and(|t| wg_tile_fits(&gpu.report, gpu.uses_f16(), t, m, n))
}

#[cfg(test)]
mod tests {
    use super::LinearParams;

    #[test]
    fn params_match_the_wgsl_struct() {
        // 8 x u32 in WGSL: size 32, align 4 (uniform buffers need a multiple of 16).
        assert_eq!(std::mem::size_of::<LinearParams>(), 32);
        assert_eq!(std::mem::align_of::<LinearParams>(), 4);
    }
}
