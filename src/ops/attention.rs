//! Multi-head self-attention with an online softmax (`shaders/attention.wgsl`).

use super::weight::stageable;
use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, KernelSpec, Prelude, Res, Stage, Staging, Tensor, TuneKey};

const SOURCE: &str = include_str!("../../shaders/attention.wgsl");
const SOURCE_TEX: &str = include_str!("../../shaders/attention_tex.wgsl");
const TEX_QKV: [&str; 2] = crate::texture_decl!(1, "qkvt", "rgba32float");

pub use crate::arch::MAX_HEAD_DIM;

/// Queries per workgroup (`BQ` in the shader).
const BQ: u32 = 64;

/// Uniform parameters of `attention.wgsl` (mirrors its `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    pub tokens: u32,
    pub heads: u32,
    pub d: u32,
    pub scale: f32,
}

/// Which attention kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttentionKernel {
    /// The texture kernel on the texture path where the width qualifies; else, on GPUs, the generated kernel with
    /// the split `tune::tune_attention` recorded for the shape (else the first), and on CPU adapters one query per
    /// invocation.
    #[default]
    Auto,
    /// Storage buffers, one invocation per query (`attention.wgsl`): enough parallel work on CPU adapters.
    PerQuery,
    /// Storage buffers, the kernel generated for the head dim (`ops::attention_gpu`) with split `SPLITS[i]`: each
    /// query's keys split across invocations, which fills a GPU.
    Split(usize),
}

/// `out = MHA(qkv)` for qkv [batch * tokens, 3D] laid out (3, heads, head_dim) and out [batch * tokens, D].
pub fn attention(gpu: &Gpu, qkv: &Tensor, out: &Tensor, tokens: usize, heads: usize) -> Result<Dispatch> {
    attention_with(gpu, qkv, out, tokens, heads, AttentionKernel::Auto)
}

/// [`attention`] with a chosen kernel (tests and benchmarks).
pub fn attention_with(
    gpu: &Gpu,
    qkv: &Tensor,
    out: &Tensor,
    tokens: usize,
    heads: usize,
    kernel: AttentionKernel,
) -> Result<Dispatch> {
    let d = out.dim(-1);
    let rows = out.numel() / d;
    let hd = d / heads.max(1);
    if heads == 0 || !d.is_multiple_of(heads) || !hd.is_multiple_of(4) || hd > MAX_HEAD_DIM {
        return Err(Error::Op(format!(
            "attention: width {d} with {heads} heads gives head dim {hd}; it must be a multiple of 4 up to {MAX_HEAD_DIM}"
        )));
    }
    if tokens == 0 || !rows.is_multiple_of(tokens) || qkv.numel() != rows * 3 * d || qkv.dtype != DType::F32 {
        return Err(Error::Op(format!("attention: qkv {:?} / out {:?} with {tokens} tokens", qkv.shape, out.shape)));
    }
    let batch = rows / tokens;
    let params =
        AttentionParams { tokens: tokens as u32, heads: heads as u32, d: d as u32, scale: 1.0 / (hd as f32).sqrt() };
    let groups = [(tokens as u32).div_ceil(BQ), heads as u32, batch as u32];
    // In f64: the product passes u32 (wasm32's usize) for the SD VAE's attention at 512 px.
    let flops = 4.0 * [batch, heads, tokens, tokens, hd].iter().map(|&v| v as f64).product::<f64>();
    // The texture variant stages qkv (rows of 3D f32 values) into an rgba32float texture.
    if kernel == AttentionKernel::Auto && gpu.report.texture_linears && stageable(gpu, 12 * d, 3 * d / 4, rows) {
        let kern = gpu.kernel(&KernelSpec {
            name: "attention_tex",
            source: &[
                gpu.texture_decl(TEX_QKV),
                SOURCE_TEX,
                if gpu.report.subgroups { super::BCAST8 } else { "" },
                super::attention_tex::source(hd as u32 / 4, gpu.report.subgroups),
            ],
            entry: "main",
            binds: &[Bind::TexF32, Bind::ReadWrite],
            constants: vec![],
            prelude: Prelude::default(),
        })?;
        let (staging, view) = gpu.staging_texture(3 * d as u32 / 4, rows as u32, Staging::Input);
        // Two queries per invocation (see the shader).
        let groups = [(tokens as u32).div_ceil(2 * BQ), heads as u32, batch as u32];
        let mut disp =
            gpu.dispatch(&kern, "attention", &params, &[Res::Tex(&view), Res::Buf(&out.buf)], groups, flops)?;
        disp.stage.push(Stage {
            src: qkv.buf.clone(),
            src_offset: 0,
            width: 3 * d as u32 / 4,
            rows: rows as u32,
            dst: staging,
        });
        return Ok(disp);
    }
    let split = match kernel {
        AttentionKernel::Auto if !gpu.report.is_cpu() => {
            // The tuned split, else the first that fits the device (else one query per invocation).
            let fits = |&i: &usize| attention_split_fits(gpu, i);
            let tuned = gpu.choice(&TuneKey::Attention { batch, tokens, heads, head_dim: hd });
            tuned.filter(fits).or_else(|| (0..super::attention_gpu::SPLITS.len()).find(fits))
        }
        AttentionKernel::Split(i) if i < super::attention_gpu::SPLITS.len() => Some(i),
        AttentionKernel::Split(i) => return Err(Error::Op(format!("attention split {i} does not exist"))),
        _ => None,
    };
    let (source, groups) = match split {
        Some(i) => {
            let qw = super::attention_gpu::SPLITS[i].0;
            (super::attention_gpu::source(hd as u32 / 4, i), [(tokens as u32).div_ceil(qw), heads as u32, batch as u32])
        }
        None => (SOURCE, groups),
    };
    let kern = gpu.kernel(&KernelSpec {
        name: "attention",
        source: &[source],
        entry: "main",
        binds: &[Bind::Read, Bind::ReadWrite],
        constants: if split.is_some() { vec![] } else { vec![("HD", hd as f64)] },
        prelude: Prelude::default(),
    })?;
    gpu.dispatch(&kern, "attention", &params, &[Res::Buf(&qkv.buf), Res::Buf(&out.buf)], groups, flops)
}

/// Whether split `ATTENTION_SPLITS[i]` of the generated kernel fits this device: its invocations and the workgroup
/// memory that merges the partial results within the device's limits.
pub fn attention_split_fits(gpu: &Gpu, i: usize) -> bool {
    super::attention_gpu::SPLITS.get(i).is_some_and(|&split| {
        let (threads, bytes) = super::attention_gpu::footprint(split);
        threads <= gpu.report.max_compute_invocations_per_workgroup
            && bytes <= gpu.report.max_compute_workgroup_storage_size
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::AttentionParams>(), 16);
    }
}
