//! Benchmarks shared by `dit bench` and the browser bench: whole-forward time (median of several runs, CPU clock
//! around submit + wait) and per-op GPU time from timestamp queries (or per-dispatch CPU timing without them).

use crate::error::Result;
use crate::gpu::{AdapterReport, Dispatch, Gpu, LiveCounts};
use crate::tune::{attention_operands, linear_operands, time_variants, tune_dit, Timing};
use crate::util::{median, now_seconds};
use serde::Serialize;
use std::collections::BTreeMap;

/// Time and throughput of one op family within a forward.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct OpTiming {
    pub dispatches: usize,
    pub ms: f64,
    pub gflop: f64,
    pub gflops_per_s: f64,
}

/// Result of benchmarking a recorded forward.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(hashmap_as_object))]
pub struct ForwardBench {
    pub adapter: AdapterReport,
    /// The median of `ms_runs`: wall time of submit + wait.
    pub ms_per_forward: f64,
    pub ms_runs: Vec<f64>,
    /// 2 x multiply-adds of the forward (the dispatches' own count).
    pub gflop_per_forward: f64,
    pub gflops_per_s: f64,
    pub dispatches_per_forward: usize,
    /// Per-op GPU time, summed over one forward; `timer` says how it was measured.
    pub ops: BTreeMap<String, OpTiming>,
    /// How `ops` was timed: "gpu-timestamps", or "cpu-per-dispatch" (with the reason when timestamps were offered).
    pub timer: &'static str,
}

/// Runs `dispatches` `warmup + repeat` times, returning the median wall time and per-op timings.
pub async fn bench_dispatches(
    gpu: &Gpu,
    dispatches: &[Dispatch],
    warmup: usize,
    repeat: usize,
) -> Result<ForwardBench> {
    for _ in 0..warmup {
        gpu.run(dispatches);
        gpu.sync().await?;
    }
    let mut runs = vec![];
    for _ in 0..repeat.max(1) {
        let t0 = now_seconds();
        gpu.run(dispatches);
        gpu.sync().await?;
        runs.push((now_seconds() - t0) * 1e3);
    }
    let refs: Vec<&Dispatch> = dispatches.iter().collect();
    let mut per = gpu.run_timed(&refs).await?;
    let mut timer = if gpu.report.timestamp_query { "gpu-timestamps" } else { "cpu-per-dispatch" };
    // Some drivers (lavapipe) offer timestamps that do not cover the work: when they add up to under a quarter of the
    // wall time, time each dispatch on the CPU clock instead.
    let wall = median(&runs) / 1e3;
    if gpu.report.timestamp_query && per.iter().sum::<f64>() < 0.25 * wall && wall > 0.02 {
        per = gpu.run_timed_cpu(&refs).await?;
        timer = "cpu-per-dispatch (the GPU timestamps covered under 25% of the wall time)";
    }
    let mut ops: BTreeMap<String, OpTiming> = BTreeMap::new();
    for (d, s) in dispatches.iter().zip(&per) {
        let e =
            ops.entry(d.op.to_string()).or_insert(OpTiming { dispatches: 0, ms: 0.0, gflop: 0.0, gflops_per_s: 0.0 });
        e.dispatches += 1;
        e.ms += s * 1e3;
        e.gflop += d.flops / 1e9;
    }
    for e in ops.values_mut() {
        e.gflops_per_s = if e.ms > 0.0 { e.gflop / (e.ms / 1e3) } else { 0.0 };
    }
    let ms = median(&runs);
    let gflop: f64 = dispatches.iter().map(|d| d.flops).sum::<f64>() / 1e9;
    Ok(ForwardBench {
        adapter: gpu.report.clone(),
        ms_per_forward: ms,
        ms_runs: runs,
        gflop_per_forward: gflop,
        gflops_per_s: gflop / (ms / 1e3),
        dispatches_per_forward: dispatches.len(),
        ops,
        timer,
    })
}

/// A DiT forward's benchmark: the timings, whether the output was finite, and the plan's activation bytes.
pub struct DitForwardBench {
    pub bench: ForwardBench,
    pub finite: bool,
    pub activation_bytes: u64,
}

/// Plans one forward of `dit` at `batch` x `latent` with fixed, documented inputs (every odd sample the null class),
/// times it with [`bench_dispatches`] and checks its output is finite. Shared by `dit bench` and the browser bench.
pub async fn bench_dit_forward(
    gpu: &Gpu,
    dit: &crate::model::Dit,
    batch: usize,
    latent: usize,
    warmup: usize,
    repeat: usize,
) -> Result<DitForwardBench> {
    tune_dit(gpu, dit, batch, latent, None).await?;
    let plan = dit.plan(gpu, batch, latent)?;
    let x: Vec<f32> = (0..plan.x.numel()).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let t: Vec<f32> = (0..batch).map(|i| (i * 997 % 1000) as f32).collect();
    let nc = dit.cfg.num_classes;
    let y: Vec<u32> = (0..batch).map(|i| if i % 2 == 1 { nc as u32 } else { (i * 37 % nc) as u32 }).collect();
    plan.set_inputs(gpu, &x, &t, &y)?;
    let bench = bench_dispatches(gpu, plan.dispatches(), warmup, repeat).await?;
    let out = gpu.read_f32(&plan.out).await?;
    Ok(DitForwardBench { bench, finite: out.iter().all(|v| v.is_finite()), activation_bytes: plan.activation_bytes })
}

/// Benchmarks: median of `repeat` rounds of about 50 ms per variant.
fn bench_timing(repeat: usize) -> Timing {
    Timing { submit_s: 0.05, rounds: repeat.max(1), best: false }
}

/// Every attention kernel on one shape (`batch` samples of `tokens` tokens, `heads` heads of `head_dim`), with
/// speed relative to the one-query-per-invocation buffer kernel.
pub async fn bench_attention(
    gpu: &Gpu,
    batch: usize,
    tokens: usize,
    heads: usize,
    head_dim: usize,
    repeat: usize,
) -> Result<Vec<KernelTiming>> {
    use crate::ops::{self, AttentionKernel};
    let (qt, out) = attention_operands(gpu, batch, tokens, heads, head_dim)?;
    let flop = 4.0 * (batch * heads * tokens * tokens * head_dim) as f64;
    let mut variants = vec![("production (auto)".to_string(), AttentionKernel::Auto)];
    for (i, (qw, g)) in ops::ATTENTION_SPLITS.iter().enumerate() {
        variants.push((format!("generated, {qw} queries x {g} key groups"), AttentionKernel::Split(i)));
    }
    variants.push(("buffers, per query".into(), AttentionKernel::PerQuery));
    let runs = variants
        .iter()
        .map(|(_, kernel)| Ok(vec![ops::attention_with(gpu, &qt, &out, tokens, heads, *kernel)?]))
        .collect::<Result<Vec<_>>>()?;
    let times = time_variants(gpu, &runs, bench_timing(repeat)).await?;
    let mut kernels: Vec<KernelTiming> =
        variants.into_iter().zip(times).map(|((name, _), ms)| KernelTiming::new(name, ms, flop)).collect();
    let base = kernels.last().map_or(1.0, |t| t.ms);
    for t in &mut kernels {
        t.vs_register_tiled = base / t.ms;
    }
    Ok(kernels)
}

/// The linear layers of DiT-XL/2 at 256 px with batch 2 (M = 2 x 256 tokens): qkv, attention out, MLP fc1, fc2, as
/// (M, K, N).
pub const DIT_XL_LINEARS: [(usize, usize, usize); 4] =
    [(512, 1152, 3456), (512, 1152, 1152), (512, 1152, 4608), (512, 4608, 1152)];

/// One kernel's time on one linear shape.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct KernelTiming {
    pub kernel: String,
    pub ms: f64,
    pub gflops_per_s: f64,
    /// Speed relative to the baseline in the same run: the register-tiled storage-buffer kernel for linears, the
    /// one-query-per-invocation kernel for attention.
    pub vs_register_tiled: f64,
}

impl KernelTiming {
    /// A timing of `ms` for `flop` operations; the ratio is filled in once the baseline is known.
    fn new(kernel: String, ms: f64, flop: f64) -> KernelTiming {
        KernelTiming { kernel, ms, gflops_per_s: flop / (ms / 1e3) / 1e9, vs_register_tiled: 0.0 }
    }
}

/// Every linear kernel on one shape `y [M, N] = x [M, K] W^T + b`, same inputs, same run.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct LinearBench {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub kernels: Vec<KernelTiming>,
}

/// Times each linear kernel this device can run on (M, K, N): the texture kernels (where the shape fits them: with
/// subgroups where the device has them, and the plain one), the register-tiled storage-buffer kernel (4x4 outputs per
/// thread) and the simple one (1x4): the median of `repeat` rounds that take turns through the kernels, each
/// submission holding a kernel's dispatch enough times to last about 50 ms.
pub async fn bench_linear(gpu: &Gpu, m: usize, k: usize, n: usize, repeat: usize) -> Result<LinearBench> {
    use crate::ops::{self, Epilogue, Linear, LinearKernel};
    let (x, buffers, y) = linear_operands(gpu, m, k, n)?;
    let mut variants: Vec<(String, Linear, LinearKernel)> = vec![];
    if Linear::texture_fits(gpu, n, k) {
        let tex = buffers.clone().to_texture(gpu)?;
        if gpu.report.subgroups {
            variants.push(("textures + subgroups (4x64)".into(), tex.clone(), LinearKernel::Tiled));
        }
        variants.push(("textures (8x32 per thread)".into(), tex, LinearKernel::Simple));
    }
    // The workgroup-memory kernel is for GPUs (on lavapipe it ran at 0.6-0.8x the register-tiled kernel); its f16
    // tiles where the device has shader-f16.
    if !gpu.report.is_cpu() {
        for (i, t) in ops::WG_TILES.iter().enumerate().filter(|&(i, _)| ops::linear_wg_fits(gpu, i, m, n)) {
            variants.push((format!("buffers, workgroup {t}"), buffers.clone(), LinearKernel::Workgroup(i)));
        }
    }
    if gpu.uses_f16() {
        variants.push((
            "buffers, register-tiled (4x4), f16 products".into(),
            buffers.clone(),
            LinearKernel::RegisterF16,
        ));
    }
    variants.push(("buffers, register-tiled (4x4)".into(), buffers.clone(), LinearKernel::Register));
    variants.push(("buffers, simple (1x4)".into(), buffers, LinearKernel::Simple));
    let flop = 2.0 * (m * k * n) as f64;
    let runs = variants
        .iter()
        .map(|(_, layer, kernel)| ops::linear(gpu, &x, layer, &y, Epilogue::Bias, *kernel))
        .collect::<Result<Vec<_>>>()?;
    let times = time_variants(gpu, &runs, bench_timing(repeat)).await?;
    let mut kernels: Vec<KernelTiming> =
        variants.into_iter().zip(times).map(|((name, ..), ms)| KernelTiming::new(name, ms, flop)).collect();
    let base = kernels.iter().find(|t| t.kernel == "buffers, register-tiled (4x4)").map_or(1.0, |t| t.ms);
    for t in &mut kernels {
        t.vs_register_tiled = base / t.ms;
    }
    Ok(LinearBench { m, k, n, kernels })
}

/// Memory after some rounds of a long run (`dit bench --memory`, tools/bench/memory.mjs): the model evaluations done,
/// the process's resident bytes (where the platform tells them) and the device's live buffers and textures.
#[derive(Clone, Debug, Serialize)]
pub struct MemorySample {
    pub forwards: usize,
    pub rss_bytes: Option<u64>,
    pub live: LiveCounts,
}

/// The least-squares slope of `y` over `x` (0 for fewer than two distinct `x`).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx > 0.0 {
        sxy / sxx
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_and_of_noise_around_it() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((super::slope(&line) - 3.0).abs() < 1e-12);
        let noisy: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { -1.0 })).collect();
        assert!(super::slope(&noisy).abs() < 0.25);
        assert_eq!(super::slope(&[(1.0, 5.0)]), 0.0);
    }
}

/// One whole image timed: [`crate::pipeline::sample`] of one guided image then its VAE decode. Shared by `dit bench
/// --sample-steps` and the wasm `benchImage`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct ImageBench {
    pub steps: usize,
    pub sampler: String,
    pub cfg: f32,
    /// Network evaluations per image: steps x rows (2 with guidance), x 2 for Heun.
    pub image_forwards: usize,
    /// The first run, which also compiles the sampler's and the decoder's pipelines.
    pub seconds_first: f64,
    /// The second run.
    pub seconds: f64,
    /// The second run's sampling (the network calls, read back) and its VAE decode.
    pub sampling_seconds: f64,
    pub decode_seconds: f64,
}

/// Times one image of class 0 (the family's default guidance: 4, or 1 for a flow map; `steps` of `sampler`: the
/// pipeline's default for the model's kind when None) and its decode, twice.
pub async fn bench_image(
    gpu: &Gpu,
    dit: &crate::model::Dit,
    vae: &crate::model::Vae,
    steps: usize,
    sampler: Option<crate::diffusion::SamplerKind>,
) -> Result<ImageBench> {
    use crate::pipeline::{self, SampleRequest};
    let latent = dit.cfg.input_size;
    let mut req = SampleRequest::new(vec![0]);
    req.steps = crate::diffusion::Spacing::Even(steps);
    req.sampler = sampler.unwrap_or_else(|| pipeline::default_sampler(dit.cfg.arch));
    req.cfg_scale = pipeline::default_cfg_scale(dit.cfg.arch);
    let mut times = vec![];
    for _ in 0..2 {
        let t0 = now_seconds();
        let z = pipeline::sample(gpu, dit, &req, |_| true).await?;
        let t1 = now_seconds();
        let z = pipeline::to_vae_latents(&dit.cfg, vae.cfg.scaling_factor, &z);
        pipeline::decode(gpu, vae, &z, 1, latent, latent).await?;
        times.push((now_seconds() - t0, t1 - t0));
    }
    let stages = if req.sampler == crate::diffusion::SamplerKind::Heun { 2 } else { 1 };
    Ok(ImageBench {
        steps,
        sampler: req.sampler.name().to_string(),
        cfg: req.cfg_scale,
        image_forwards: steps * stages * pipeline::dit_batch(1, req.cfg_scale),
        seconds_first: times[0].0,
        seconds: times[1].0,
        sampling_seconds: times[1].1,
        decode_seconds: times[1].0 - times[1].1,
    })
}
