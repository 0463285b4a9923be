//! Multi-head self-attention with an online softmax (`shaders/attention/`): the kernel choice here; one invocation
//! per query (`per_query.wgsl`, CPU adapters on buffers), the split kernel of GPUs (`split.rs`), the texture kernel
//! of CPU adapters (`texture.rs`); the last two with helpers written out per head dim (`head.rs`).

mod head;
mod split;
mod texture;

use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, KernelSpec, Res, Tensor, TuneKey};

pub use crate::arch::MAX_HEAD_DIM;
pub use split::{attention_split_fits, SPLITS as ATTENTION_SPLITS};

const PER_QUERY: &str = crate::shader!("attention/per_query");

/// Queries per workgroup of `per_query.wgsl` (`BQ` there).
const BQ: u32 = 64;

/// Uniform parameters of the attention kernels (mirrors their `Params`).
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
    /// The texture kernel on the texture path where the width qualifies; else, on GPUs, the split kernel with the
    /// split `tune::tune_attention` recorded for the shape (else the first), and on CPU adapters one query per
    /// invocation.
    #[default]
    Auto,
    /// Storage buffers, one invocation per query (`per_query.wgsl`): enough parallel work on CPU adapters.
    PerQuery,
    /// Storage buffers, the split kernel (`split.wgsl`) with split `ATTENTION_SPLITS[i]`: each query's keys split
    /// across invocations, which fills a GPU.
    Split(usize),
}

/// One attention's operands and shape, as the kernels take them.
struct Problem<'a> {
    qkv: &'a Tensor,
    out: &'a Tensor,
    params: AttentionParams,
    batch: usize,
    rows: usize,
    head_dim: usize,
    flops: f64,
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
    // In f64: the product passes u32 (wasm32's usize) for the SD VAE's attention at 512 px.
    let flops = 4.0 * [batch, heads, tokens, tokens, hd].iter().map(|&v| v as f64).product::<f64>();
    let problem = Problem { qkv, out, params, batch, rows, head_dim: hd, flops };
    if kernel == AttentionKernel::Auto && texture::fits(gpu, d, rows) {
        return texture::dispatch(gpu, &problem);
    }
    match choose(gpu, &problem, kernel)? {
        Some(i) => split::dispatch(gpu, &problem, i),
        None => per_query(gpu, &problem),
    }
}

/// The split of the GPU kernel `kernel` means on this device (None: one query per invocation). `Auto` takes, on
/// GPUs, the tuned split, else the first that fits the device.
fn choose(gpu: &Gpu, p: &Problem<'_>, kernel: AttentionKernel) -> Result<Option<usize>> {
    let heads = p.params.heads as usize;
    Ok(match kernel {
        AttentionKernel::Auto if gpu.report.kernels.gpu() => {
            let fits = |&i: &usize| attention_split_fits(gpu, i);
            let (batch, tokens, head_dim) = (p.batch, p.params.tokens as usize, p.head_dim);
            let tuned = gpu.choice(&TuneKey::Attention { batch, tokens, heads, head_dim });
            tuned.filter(fits).or_else(|| (0..ATTENTION_SPLITS.len()).find(fits))
        }
        AttentionKernel::Split(i) if i < ATTENTION_SPLITS.len() => Some(i),
        AttentionKernel::Split(i) => return Err(Error::Op(format!("attention split {i} does not exist"))),
        _ => None,
    })
}

/// One invocation per query, keys and values through workgroup memory (`per_query.wgsl`).
fn per_query(gpu: &Gpu, p: &Problem<'_>) -> Result<Dispatch> {
    let kern = gpu.kernel(&KernelSpec {
        name: "attention",
        variant: "per_query".into(),
        source: &[PER_QUERY],
        entry: "main",
        binds: &[Bind::Read, Bind::ReadWrite],
        constants: vec![("HD", p.head_dim as f64)],
        ..Default::default()
    })?;
    let groups = [p.params.tokens.div_ceil(BQ), p.params.heads, p.batch as u32];
    let res = [Res::Buf(&p.qkv.buf), Res::Buf(&p.out.buf)];
    gpu.dispatch(&kern, "attention", &p.params, &res, groups, p.flops)
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::AttentionParams>(), 16);
    }
}
