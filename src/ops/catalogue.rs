//! Every kernel the ops can compile on a device, built without running: each op at a small shape with each kernel
//! choice the device offers (the GPU kernels of `LinearKernel::Workgroup` and `AttentionKernel::Split` included, which
//! a CPU adapter runs only when asked). `dit kernels --dump` writes what this compiles (`Gpu::compiled_kernels`), and
//! tests/kernels_wgsl.rs validates it with naga on its own.

use super::{
    attention_split_fits, attention_with, condition, conv2d, group_norm, layernorm_modulate, linear, linear_wg_fits,
    matmul, nchw_to_nhwc, patchify, qk_rms_norm, softmax_rows, timestep_freqs, transpose, unpatchify, AttentionKernel,
    Conv2d, Epilogue, GroupNorm, Linear, LinearKernel, ATTENTION_SPLITS, LABEL_WORDS, WG_TILES,
};
use crate::error::Result;
use crate::gpu::{Arena, DType, Gpu, Tensor};

/// The head dims the attention kernels are written out for here: DiT-S/B/L's and DiT-XL's.
pub const CATALOGUE_HEAD_DIMS: [usize; 2] = [64, 72];

/// Compiles every kernel of the ops on `gpu` (see the module's doc); returns how many pipelines the device holds.
pub fn compile_every_kernel(gpu: &Gpu) -> Result<usize> {
    let mut a = Arena::new();
    linears(gpu, &mut a)?;
    attentions(gpu, &mut a)?;
    norms(gpu, &mut a)?;
    conv_and_layout(gpu, &mut a)?;
    embed_and_patch(gpu, &mut a)?;
    Ok(gpu.kernel_count())
}

/// An fp16 tensor of zeros.
fn zeros_f16(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_f32_as_f16(gpu, "zeros", shape, &vec![0.0; shape.iter().product()])
}

/// `t` read with another shape of as many elements.
fn reshape(t: &Tensor, shape: &[usize]) -> Tensor {
    Tensor { shape: shape.to_vec(), ..t.clone() }
}

/// Every linear kernel: each epilogue on the register-tiled and texture kernels, the others with a plain bias.
fn linears(gpu: &Gpu, a: &mut Arena) -> Result<()> {
    let (m, k, n) = (64, 64, 64);
    let (x, y, table, gate) = (
        a.f32(gpu, "x", &[m, k])?,
        a.f32(gpu, "y", &[m, n])?,
        a.f32(gpu, "table", &[m, n])?,
        a.f32(gpu, "gate", &[1, n])?,
    );
    let layer = Linear::new(zeros_f16(gpu, &[n, k])?, zeros_f16(gpu, &[n])?)?;
    let epilogues = [
        Epilogue::Bias,
        Epilogue::Gelu,
        Epilogue::Silu,
        Epilogue::GatedResidual { gate: &gate, tokens: m, offset: 0 },
        Epilogue::AddTable { table: &table, tokens: m },
        Epilogue::Residual,
    ];
    let mut kernels = vec![LinearKernel::Simple];
    if gpu.uses_f16() {
        kernels.push(LinearKernel::RegisterF16);
    }
    kernels.extend((0..WG_TILES.len()).filter(|&i| linear_wg_fits(gpu, i, m, n)).map(LinearKernel::Workgroup));
    for kernel in kernels {
        linear(gpu, &x, &layer, &y, Epilogue::Bias, kernel)?;
    }
    let texture = Linear::texture_fits(gpu, n, k).then(|| layer.clone().to_texture(gpu)).transpose()?;
    for epi in epilogues {
        linear(gpu, &x, &layer, &y, epi, LinearKernel::Register)?;
        if let Some(t) = &texture {
            linear(gpu, &x, t, &y, epi, LinearKernel::Tiled)?;
            linear(gpu, &x, t, &y, epi, LinearKernel::Simple)?;
        }
    }
    matmul(gpu, &x, &table, &y, Epilogue::Bias)?;
    Ok(())
}

/// The attention kernels for each of [`CATALOGUE_HEAD_DIMS`]: one query per invocation, every split that fits, and
/// the device's own choice (the texture kernel on the texture path).
fn attentions(gpu: &Gpu, a: &mut Arena) -> Result<()> {
    let (tokens, heads) = (16, 2);
    let splits = (0..ATTENTION_SPLITS.len()).filter(|&i| attention_split_fits(gpu, i)).map(AttentionKernel::Split);
    let kernels: Vec<_> = [AttentionKernel::Auto, AttentionKernel::PerQuery].into_iter().chain(splits).collect();
    for hd in CATALOGUE_HEAD_DIMS {
        let d = heads * hd;
        let (qkv, out) = (a.f32(gpu, "qkv", &[tokens, 3 * d])?, a.f32(gpu, "out", &[tokens, d])?);
        for &kernel in &kernels {
            attention_with(gpu, &qkv, &out, tokens, heads, kernel)?;
        }
    }
    Ok(())
}

/// LayerNorm with modulation, the q/k RMSNorm and GroupNorm.
fn norms(gpu: &Gpu, a: &mut Arena) -> Result<()> {
    let (tokens, d, hd) = (16, 64, 32);
    let (x, y, modv) =
        (a.f32(gpu, "x", &[tokens, d])?, a.f32(gpu, "y", &[tokens, d])?, a.f32(gpu, "mod", &[1, 2 * d])?);
    layernorm_modulate(gpu, &x, &modv, &y, tokens, 0, d)?;
    let qkv = a.f32(gpu, "qkv", &[tokens, 3 * d])?;
    let scale = zeros_f16(gpu, &[hd])?;
    qk_rms_norm(gpu, &qkv, &scale, &scale, hd)?;
    let (affine, stats) = (zeros_f16(gpu, &[d])?, a.f32(gpu, "stats", &[2 * 8])?);
    let norm = GroupNorm { gamma: &affine, beta: &affine, groups: 8, silu: true };
    group_norm(gpu, &norm, &reshape(&x, &[1, tokens, d]), &stats, &reshape(&y, &[1, tokens, d]))?;
    Ok(())
}

/// The convolution (its weights where the device keeps them), the layout changes and the row softmax.
fn conv_and_layout(gpu: &Gpu, a: &mut Arena) -> Result<()> {
    let (h, c) = (4, 8);
    let conv = Conv2d::new(gpu, &zeros_f16(gpu, &[c, c, 3, 3])?, &zeros_f16(gpu, &[c])?)?;
    let (x, y, up) =
        (a.f32(gpu, "x", &[1, h, h, c])?, a.f32(gpu, "y", &[1, h, h, c])?, a.f32(gpu, "up", &[1, 2 * h, 2 * h, c])?);
    conv2d(gpu, &x, &conv, &y, false, None)?;
    conv2d(gpu, &x, &conv, &up, true, None)?;
    nchw_to_nhwc(gpu, &reshape(&x, &[1, c, h, h]), &y, 1.0)?;
    let (s, t) = (a.f32(gpu, "s", &[8, 16])?, a.f32(gpu, "t", &[16, 8])?);
    transpose(gpu, &s, &t)?;
    softmax_rows(gpu, &s, 1.0)?;
    Ok(())
}

/// The timestep features, the class conditioning and the patch reshapes.
fn embed_and_patch(gpu: &Gpu, a: &mut Arena) -> Result<()> {
    let (n, d) = (2, 64);
    let (t, freqs) = (a.f32(gpu, "t", &[n])?, a.f32(gpu, "freqs", &[n, super::FREQ_DIM])?);
    let table = zeros_f16(gpu, &[4, d])?;
    timestep_freqs(gpu, &t, &table, &freqs)?;
    let labels = a.alloc(gpu, "labels", &[n, LABEL_WORDS], DType::U32)?;
    let (temb, out) = (a.f32(gpu, "temb", &[n, d])?, a.f32(gpu, "cond", &[n, d])?);
    condition(gpu, &labels, &table, &temb, &out)?;
    let (image, patches) = (a.f32(gpu, "image", &[1, 4, 8, 8])?, a.f32(gpu, "patches", &[16, 16])?);
    patchify(gpu, &image, &patches, 2)?;
    unpatchify(gpu, &patches, &image, 2)?;
    Ok(())
}
