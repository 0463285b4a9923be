//! Kernel choice by timing, in one place: the variants of an op are timed against each other on this device
//! ([`time_variants`]), the fastest is recorded in the device's choice table (`gpu::TuneKey` -> variant, read by the
//! op families in `ops` when they choose a kernel), and the choices are kept across runs ([`cache`]: a file natively,
//! Cache Storage in the browser). `pipeline` tunes through here before sampling; `bench` reuses the timing.

pub mod cache;

use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor, TuneKey};
use crate::util::{median, now_seconds};

/// How [`time_variants`] sizes and summarises its runs.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    /// Copies of a variant per submission: as many as last about this long (1 to 200).
    pub(crate) submit_s: f64,
    /// Rounds; each round submits every variant once, in turn.
    pub(crate) rounds: usize,
    /// Each variant's best round (tuning: the fastest a kernel can go) instead of the median (benchmarks).
    pub(crate) best: bool,
}

/// Tuning at load: best of 3 rounds of about 4 ms per variant.
const TUNE_TIMING: Timing = Timing { submit_s: 0.004, rounds: 3, best: true };

/// Times variants of one op against each other: each is compiled and run once (warm-up), then timed once to size its
/// submissions; the rounds take turns through the variants, so that a change in the machine's load or clocks falls
/// on all of them rather than on whichever ran last. Returns ms per run of each variant.
pub(crate) async fn time_variants(gpu: &Gpu, variants: &[Vec<Dispatch>], timing: Timing) -> Result<Vec<f64>> {
    let mut copies = vec![];
    for d in variants {
        gpu.run(d);
        gpu.sync().await?;
        let t0 = now_seconds();
        gpu.run(d);
        gpu.sync().await?;
        copies.push((timing.submit_s / (now_seconds() - t0).max(1e-6)).clamp(1.0, 200.0) as usize);
    }
    let mut runs = vec![vec![]; variants.len()];
    for _ in 0..timing.rounds {
        for (i, d) in variants.iter().enumerate() {
            let t0 = now_seconds();
            gpu.run(std::iter::repeat_n(d, copies[i]).flatten());
            gpu.sync().await?;
            runs[i].push((now_seconds() - t0) * 1e3 / copies[i] as f64);
        }
    }
    gpu.check()?;
    Ok(runs
        .iter()
        .map(|r| if timing.best { r.iter().copied().fold(f64::INFINITY, f64::min) } else { median(r) })
        .collect())
}

/// Times the workgroup-memory linear kernel in every tile config on y [M, N] = x [M, K] W^T + b and records the
/// fastest for that shape on this device ([`Gpu::set_choice`]); returns the ms of each config (best of 3 rounds of
/// about 4 ms per config, [`TUNE_TIMING`]; infinite for a config that does not fit the device: `ops::linear_wg_fits`).
pub async fn tune_linear(gpu: &Gpu, m: usize, k: usize, n: usize) -> Result<Vec<f64>> {
    use crate::ops::{self, Epilogue, LinearKernel};
    let (x, layer, y) = linear_operands(gpu, m, k, n)?;
    // Configs that do not fit the device (workgroup limits, a split-K scratch over the storage binding limit, f16 tiles
    // without shader-f16) are not tried (infinite time).
    let fits: Vec<usize> = (0..ops::WG_TILES.len()).filter(|&i| ops::linear_wg_fits(gpu, i, m, n)).collect();
    let variants = fits
        .iter()
        .map(|&i| ops::linear(gpu, &x, &layer, &y, Epilogue::Bias, LinearKernel::Workgroup(i)))
        .collect::<Result<Vec<_>>>()?;
    let raced = time_variants(gpu, &variants, TUNE_TIMING).await?;
    let mut times = vec![f64::INFINITY; ops::WG_TILES.len()];
    for (&i, t) in fits.iter().zip(raced) {
        times[i] = t;
    }
    if !fits.is_empty() {
        gpu.set_choice(TuneKey::Linear { m, k, n }, fastest(&times));
    }
    Ok(times)
}

/// Random x [M, K], a layer of fp16 weights [N, K] with bias (in a storage buffer) and y [M, N], for timing.
pub(crate) fn linear_operands(gpu: &Gpu, m: usize, k: usize, n: usize) -> Result<(Tensor, crate::ops::Linear, Tensor)> {
    let mut rng = crate::util::SplitMix64(((m * 31 + k) * 31 + n) as u64);
    let mut vals = |len: usize, scale: f32| (0..len).map(|_| rng.uniform() * scale).collect::<Vec<f32>>();
    let x = Tensor::from_f32(gpu, "bench x", &[m, k], &vals(m * k, 1.0))?;
    let y = Tensor::from_f32(gpu, "bench y", &[m, n], &vec![0.0; m * n])?;
    let w = Tensor::from_f32_as_f16(gpu, "bench w", &[n, k], &vals(n * k, 1.0 / (k as f32).sqrt()))?;
    let b = Tensor::from_f32_as_f16(gpu, "bench b", &[n], &vals(n, 0.1))?;
    Ok((x, crate::ops::Linear::new(w, b)?, y))
}

/// Deterministic qkv [batch * tokens, 3D] and out [batch * tokens, D] for timing attention.
pub(crate) fn attention_operands(
    gpu: &Gpu,
    batch: usize,
    tokens: usize,
    heads: usize,
    hd: usize,
) -> Result<(Tensor, Tensor)> {
    let d = heads * hd;
    let qkv: Vec<f32> = (0..batch * tokens * 3 * d).map(|i| ((i * 7919) % 997) as f32 / 500.0 - 1.0).collect();
    let qt = Tensor::from_f32(gpu, "bench qkv", &[batch * tokens, 3 * d], &qkv)?;
    let out = Tensor::from_f32(gpu, "bench out", &[batch * tokens, d], &vec![0.0; batch * tokens * d])?;
    Ok((qt, out))
}

fn fastest(times: &[f64]) -> usize {
    (0..times.len()).min_by(|&a, &b| times[a].total_cmp(&times[b])).unwrap_or(0)
}

/// Times the GPU attention kernel in every split on `batch` samples of `tokens` tokens with `heads` heads of
/// `head_dim` and records the fastest ([`Gpu::set_choice`]); returns the ms of each.
pub async fn tune_attention(gpu: &Gpu, batch: usize, tokens: usize, heads: usize, head_dim: usize) -> Result<Vec<f64>> {
    use crate::ops::{self, AttentionKernel};
    let (qt, out) = attention_operands(gpu, batch, tokens, heads, head_dim)?;
    // Splits that do not fit the device's workgroup limits are not tried (infinite time).
    let fits: Vec<usize> = (0..ops::ATTENTION_SPLITS.len()).filter(|&i| ops::attention_split_fits(gpu, i)).collect();
    let variants = fits
        .iter()
        .map(|&i| Ok(vec![ops::attention_with(gpu, &qt, &out, tokens, heads, AttentionKernel::Split(i))?]))
        .collect::<Result<Vec<_>>>()?;
    let raced = time_variants(gpu, &variants, TUNE_TIMING).await?;
    let mut times = vec![f64::INFINITY; ops::ATTENTION_SPLITS.len()];
    for (&i, t) in fits.iter().zip(raced) {
        times[i] = t;
    }
    if !fits.is_empty() {
        gpu.set_choice(TuneKey::Attention { batch, tokens, heads, head_dim }, fastest(&times));
    }
    Ok(times)
}

/// Whether this device runs the kernels [`tune_dit`] tunes (GPUs on storage buffers; not CPU adapters or the texture
/// path).
pub fn tunes(gpu: &Gpu) -> bool {
    gpu.report.kernels.gpu()
}

/// Tunes the GPU kernels of a DiT forward at `batch` x `latent`: the workgroup tile of every distinct linear shape
/// ([`tune_linear`]) and the attention split ([`tune_attention`]), each shape once per device, taking what
/// [`cache`] kept from an earlier run and keeping what it finds. In the browser `cache` is the adapter's key in
/// Cache Storage ([`cache::adapter_key_with`]; None: nothing kept). Nothing to do on CPU adapters or on the
/// texture path, which do not use these kernels.
pub async fn tune_dit(
    gpu: &Gpu,
    dit: &crate::model::Dit,
    batch: usize,
    latent: usize,
    #[allow(unused_variables)] cache: Option<&str>,
) -> Result<()> {
    if !tunes(gpu) {
        return Ok(());
    }
    let (tokens, heads, head_dim) = (dit.cfg.tokens(latent), dit.cfg.num_heads, dit.cfg.head_dim());
    let attention = TuneKey::Attention { batch, tokens, heads, head_dim };
    let linears: Vec<_> = dit.linear_shapes(batch, latent).into_iter().filter(|s| s.0 >= 32).collect();
    let missing = |gpu: &Gpu| {
        gpu.choice(&attention).is_none()
            || linears.iter().any(|&(m, k, n)| gpu.choice(&TuneKey::Linear { m, k, n }).is_none())
    };
    if !missing(gpu) {
        return Ok(());
    }
    #[cfg(not(target_arch = "wasm32"))]
    cache::load(gpu);
    #[cfg(target_arch = "wasm32")]
    if let Some(key) = cache {
        cache::load_browser(gpu, key).await;
    }
    if !missing(gpu) {
        return Ok(());
    }
    for &(m, k, n) in &linears {
        if gpu.choice(&TuneKey::Linear { m, k, n }).is_none() {
            tune_linear(gpu, m, k, n).await?;
        }
    }
    if gpu.choice(&attention).is_none() {
        tune_attention(gpu, batch, tokens, heads, head_dim).await?;
    }
    #[cfg(not(target_arch = "wasm32"))]
    cache::save(gpu);
    #[cfg(target_arch = "wasm32")]
    if let Some(key) = cache {
        cache::save_browser(gpu, key).await;
    }
    Ok(())
}
