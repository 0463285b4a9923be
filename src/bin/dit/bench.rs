//! `dit bench`: a DiT forward timed (with a baseline and optionally one whole image), the kernels alone, or memory
//! over a long run (`--memory`), printed as tables or as JSON.

use crate::gpu::{open_gpu, GpuArgs, LinearArg};
use clap::Args;
use dit_wasm::arch::{dit_tensors, vae_tensors, DitConfig, VaeConfig};
use dit_wasm::bench::{
    bench_attention, bench_dit_forward, bench_image, bench_linear, slope, ForwardBench, MemorySample, DIT_XL_LINEARS,
};
use dit_wasm::diffusion::{SamplerKind, Spacing};
use dit_wasm::gpu::{Gpu, TuneKey};
use dit_wasm::loader;
use dit_wasm::model::Vae;
use dit_wasm::ops::LinearKernel;
use dit_wasm::pipeline::{self, SampleRequest};
use dit_wasm::{Dit, Error, GpuWeights, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct BenchArgs {
    /// Model directory to benchmark.
    #[arg(long, conflicts_with = "preset")]
    model: Option<PathBuf>,
    /// Paper preset (S/2, B/4, XL/2, ...), used with --random-weights.
    #[arg(long, requires = "random_weights")]
    preset: Option<String>,
    /// Fill the preset with random weights instead of loading a directory.
    #[arg(long)]
    random_weights: bool,
    /// What the random-weight preset is trained as: dit, sit, meanflow or dmf (a flow map: one network call per step,
    /// guidance 1).
    #[arg(long, default_value = "dit", requires = "random_weights")]
    arch: String,
    /// Image resolution in pixels (latent = res / 8); default: the model's own.
    #[arg(long)]
    res: Option<usize>,
    /// Batch size of the forward (2 = one guided sample).
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Skip the baseline run with the simple linear kernel.
    #[arg(long)]
    no_baseline: bool,
    /// Also time generating one image: this many steps (DDIM, or --sampler), guidance 4 (a flow map: 1), then the VAE
    /// (needs --vae, or --random-weights for a random SD VAE).
    #[arg(long, default_value_t = 0)]
    sample_steps: usize,
    /// The sampler of --sample-steps (ddpm, ddim, dpmpp2m; euler, ... for a SiT); default DDIM (Euler for a SiT).
    #[arg(long, requires = "sample_steps")]
    sampler: Option<String>,
    /// VAE decoder directory, for --sample-steps.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Benchmark the linear kernels alone on DiT-XL/2's layer shapes (M = 512, K = 1152 or 4608, N = 1152..4608):
    /// the texture kernel, the register-tiled and the simple storage-buffer kernels, in one run.
    #[arg(long, conflicts_with_all = ["model", "preset"])]
    kernels: bool,
    /// With --kernels: time these linear shapes instead (M x K x N, comma-separated, e.g. 512x1152x3456) and skip
    /// attention.
    #[arg(long, requires = "kernels", value_delimiter = ',', value_parser = parse_shape)]
    shapes: Vec<[usize; 3]>,
    /// Memory over a long run instead of timing: this many model evaluations (forwards), the process's resident
    /// memory and the live GPU buffers sampled along the way, and their growth per forward after warm-up (a linear
    /// fit). With --vae, whole generations (--sample-steps DDIM steps, default 10, guided, then the VAE); without,
    /// forwards of one plan, each read back.
    #[arg(long, value_name = "FORWARDS")]
    memory: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// Loads the benchmarked model: a directory, or a preset with random weights (seed 0, so every load is the same).
async fn bench_model(gpu: &Gpu, b: &BenchArgs) -> Result<(Dit, String, u64)> {
    match (&b.model, &b.preset, b.random_weights) {
        (Some(dir), None, false) => {
            let origin = loader::Origin::new();
            let (index, w) = loader::weights(&origin, gpu, &dir.to_string_lossy(), loader::Arch::Dit, None).await?;
            let bytes = w.bytes();
            let cfg = loader::dit_config(&index, &dir.display().to_string())?;
            Ok((Dit::load(gpu, cfg, w)?, dir.display().to_string(), bytes))
        }
        (None, Some(preset), true) => {
            let family = dit_wasm::arch::Family::parse(&b.arch)?;
            let cfg = DitConfig::preset(preset, b.res.unwrap_or(256))?.trained_as(family);
            let w = GpuWeights::random(gpu, &dit_tensors(&cfg), 0)?;
            let bytes = w.bytes();
            let name = cfg.preset_name().unwrap_or_else(|| preset.clone());
            Ok((Dit::load(gpu, cfg, w)?, name, bytes))
        }
        _ => Err(Error::input("give --model DIR, or --preset NAME --random-weights")),
    }
}

/// Runs one benchmark of a model's forward; returns the timings, whether the output was finite, and activation bytes.
async fn bench_forward(gpu: &Gpu, dit: &Dit, b: &BenchArgs, latent: usize) -> Result<(ForwardBench, bool, u64)> {
    let r = bench_dit_forward(gpu, dit, b.batch, latent, b.warmup, b.repeat).await?;
    Ok((r.bench, r.finite, r.activation_bytes))
}

pub async fn run(b: BenchArgs) -> Result<()> {
    if b.batch == 0 {
        return Err(Error::input("--batch must be at least 1"));
    }
    let gpu = open_gpu(&b.gpu).await?;
    if b.kernels {
        return bench_linears(&gpu, &b).await;
    }
    let (dit, name, weight_bytes) = bench_model(&gpu, &b).await?;
    let latent = b.res.map_or(dit.cfg.input_size, |r| r / 8);
    if let Some(forwards) = b.memory {
        return bench_memory(&gpu, &dit, &b, &name, latent, forwards).await;
    }
    let (main, finite, activation_bytes) = bench_forward(&gpu, &dit, &b, latent).await?;
    // The baseline: the same model with weights in storage buffers and the simple linear kernel, same run.
    let baseline = if b.no_baseline {
        None
    } else {
        let base_args = GpuArgs { linear: LinearArg::Buffers, ..b.gpu.clone() };
        let base_gpu = open_gpu(&base_args).await?;
        let (mut base_dit, _, _) = bench_model(&base_gpu, &b).await?;
        base_dit.set_linear_kernel(LinearKernel::Simple);
        Some(bench_forward(&base_gpu, &base_dit, &b, latent).await?.0)
    };
    let generate = bench_generate(&gpu, &dit, &b).await?;
    let report = serde_json::json!({
        "model": name,
        "generate_one_image": generate,
        "resolution": latent * 8,
        "latent": latent,
        "batch": b.batch,
        "adapter": main.adapter,
        "linear_path": gpu.report.linear_path(),
        "tuned": tuned(&gpu),
        "ms_per_forward": main.ms_per_forward,
        "gflops_per_s": main.gflops_per_s,
        "gflop_per_forward": main.gflop_per_forward,
        "paper_gmacs_per_image": dit.cfg.macs(latent) / 1e9,
        "dispatches_per_forward": main.dispatches_per_forward,
        "weight_bytes": weight_bytes,
        "activation_bytes": activation_bytes,
        "output_finite": finite,
        "timer": main.timer,
        "ops": main.ops,
        "ms_runs": main.ms_runs,
        "baseline": baseline.as_ref().map(|bb| baseline_json(&main, bb)),
    });
    if b.json {
        println!("{report}");
    } else {
        print_table(&report, &main, baseline.as_ref());
    }
    if !finite {
        return Err(Error::Gpu("the forward produced NaN or infinity".into()));
    }
    Ok(())
}

/// `--sample-steps N`: one whole image timed (guided steps, then the VAE decode); `None` without it.
async fn bench_generate(gpu: &Gpu, dit: &Dit, b: &BenchArgs) -> Result<Option<serde_json::Value>> {
    if b.sample_steps == 0 {
        return Ok(None);
    }
    let vae = match (&b.vae, b.random_weights) {
        (Some(dir), _) => loader::vae(&loader::Origin::new(), gpu, &dir.to_string_lossy(), None).await?,
        (None, true) => {
            let cfg = VaeConfig::sd();
            Vae::load(gpu, cfg.clone(), GpuWeights::random(gpu, &vae_tensors(&cfg), 0)?)?
        }
        (None, false) => return Err(Error::input("--sample-steps needs --vae DIR (or --random-weights)")),
    };
    // One model evaluation per step by default: DDIM for a DiT, Euler for a SiT (a flow), a flow map's own.
    let sampler = match &b.sampler {
        Some(s) => SamplerKind::parse(s)?,
        None if dit.cfg.arch.is_flow() => SamplerKind::Euler,
        None if dit.cfg.arch.is_flow_map() => SamplerKind::FlowMap,
        None => SamplerKind::Ddim,
    };
    Ok(Some(serde_json::json!(bench_image(gpu, dit, &vae, b.sample_steps, Some(sampler)).await?)))
}

/// The kernel choices tuned on this device, one line each.
fn tuned(gpu: &Gpu) -> Vec<String> {
    let line = |&(key, c): &(TuneKey, usize)| match key {
        TuneKey::Linear { m, k, n } => format!("linear {m}x{k}x{n}: {}", dit_wasm::ops::WG_TILES[c]),
        TuneKey::Attention { batch, tokens, heads, head_dim } => {
            let (qw, g) = dit_wasm::ops::ATTENTION_SPLITS[c];
            format!("attention {batch}x{tokens}x{heads}x{head_dim}: {qw} queries x {g} key groups")
        }
    };
    gpu.choices().iter().map(line).collect()
}

/// One `--shapes` entry: `MxKxN`, M positive, K and N multiples of 4.
fn parse_shape(s: &str) -> std::result::Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split('x')
        .map(|d| d.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{s}` is not MxKxN (e.g. 512x1152x3456)"))?;
    match v[..] {
        [m, k, n] if m > 0 && k > 0 && n > 0 && k % 4 == 0 && n % 4 == 0 && m * k.max(n) <= 1 << 26 => Ok([m, k, n]),
        _ => Err(format!("`{s}`: need MxKxN with M, K, N positive, K and N multiples of 4, at most 64M elements")),
    }
}

/// `dit bench --kernels`: every linear kernel on DiT-XL/2's shapes.
async fn bench_linears(gpu: &Gpu, b: &BenchArgs) -> Result<()> {
    let mut all = vec![];
    let shapes: Vec<[usize; 3]> = if b.shapes.is_empty() {
        DIT_XL_LINEARS.iter().map(|&(m, k, n)| [m, k, n]).collect()
    } else {
        b.shapes.clone()
    };
    for [m, k, n] in shapes {
        all.push(bench_linear(gpu, m, k, n, b.repeat).await?);
    }
    // DiT-XL/2's attention at 256 px, batch 2: 256 tokens, 16 heads of 72.
    let attention = if b.shapes.is_empty() { bench_attention(gpu, 2, 256, 16, 72, b.repeat).await? } else { vec![] };
    if b.json {
        println!("{}", serde_json::json!({ "adapter": gpu.report, "linear": all, "attention": attention }));
        return Ok(());
    }
    println!(
        "linear kernels on {}, {} ({}, fp16 {})",
        if b.shapes.is_empty() { "DiT-XL/2's shapes" } else { "the given shapes" },
        gpu.report.name,
        gpu.report.backend,
        gpu.report.f16_weights_path
    );
    println!("{:<20} {:<30} {:>10} {:>10} {:>22}", "M x K x N", "kernel", "ms", "GFLOP/s", "vs register-tiled");
    for r in &all {
        for t in &r.kernels {
            println!(
                "{:<20} {:<30} {:>10.2} {:>10.2} {:>21.2}x",
                format!("{} x {} x {}", r.m, r.k, r.n),
                t.kernel,
                t.ms,
                t.gflops_per_s,
                t.vs_register_tiled
            );
        }
    }
    if attention.is_empty() {
        return Ok(());
    }
    println!("attention, DiT-XL/2 at 256 px (batch 2, 256 tokens, 16 heads of 72)");
    println!("{:<20} {:<30} {:>10} {:>10} {:>22}", "", "kernel", "ms", "GFLOP/s", "vs per-query");
    for t in &attention {
        println!("{:<20} {:<30} {:>10.3} {:>10.2} {:>21.2}x", "", t.kernel, t.ms, t.gflops_per_s, t.vs_register_tiled);
    }
    Ok(())
}

fn baseline_json(main: &ForwardBench, base: &ForwardBench) -> serde_json::Value {
    let lin = |b: &ForwardBench| b.ops.get("linear").map_or(0.0, |o| o.gflops_per_s);
    serde_json::json!({
        "linear_kernel": "simple (storage buffers, 1x4 outputs per thread)",
        "ms_per_forward": base.ms_per_forward,
        "linear_gflops_per_s": lin(base),
        "forward_speedup": base.ms_per_forward / main.ms_per_forward,
        "linear_speedup": if lin(base) > 0.0 { lin(main) / lin(base) } else { 0.0 },
    })
}

fn print_table(r: &serde_json::Value, main: &ForwardBench, base: Option<&ForwardBench>) {
    println!(
        "{} at a {}x{} latent, batch {} on {} ({}, linear layers on {}, fp16 {})",
        r["model"].as_str().unwrap_or_default(),
        r["latent"],
        r["latent"],
        r["batch"],
        main.adapter.name,
        main.adapter.backend,
        r["linear_path"].as_str().unwrap_or_default(),
        main.adapter.f16_weights_path
    );
    println!(
        "forward: {:.1} ms (median of {}), {:.2} GFLOP/s, {} dispatches, weights {:.1} MB, activations {:.1} MB",
        main.ms_per_forward,
        main.ms_runs.len(),
        main.gflops_per_s,
        main.dispatches_per_forward,
        r["weight_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        r["activation_bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    if let Some(tuned) = r["tuned"].as_array().filter(|t| !t.is_empty()) {
        let tuned: Vec<&str> = tuned.iter().filter_map(|t| t.as_str()).collect();
        println!(
            "kernel choices, tuned at load or kept from an earlier run \
             (linear M x K x N, attention batch x tokens x heads x head dim):"
        );
        for t in tuned {
            println!("  {t}");
        }
    }
    println!("{:<12} {:>10} {:>10} {:>10} {:>12}   ({})", "op", "dispatches", "ms", "GFLOP", "GFLOP/s", main.timer);
    for (op, t) in &main.ops {
        println!("{op:<12} {:>10} {:>10.2} {:>10.3} {:>12.2}", t.dispatches, t.ms, t.gflop, t.gflops_per_s);
    }
    if let Some(g) = r["generate_one_image"].as_object() {
        println!(
            "one image, {} {} steps + VAE decode: {:.2} s (sampling {:.2} s, decode {:.2} s; first run, with shader \
             compile: {:.2} s)",
            g["steps"],
            g["sampler"].as_str().unwrap_or_default(),
            g["seconds"].as_f64().unwrap_or(0.0),
            g["sampling_seconds"].as_f64().unwrap_or(0.0),
            g["decode_seconds"].as_f64().unwrap_or(0.0),
            g["seconds_first"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(b) = base {
        let v = baseline_json(main, b);
        println!(
            "baseline (simple buffer linear kernel, same run): {:.1} ms per forward, linear {:.2} GFLOP/s -> {:.2}x faster (linear {:.2}x)",
            b.ms_per_forward,
            v["linear_gflops_per_s"].as_f64().unwrap_or(0.0),
            v["forward_speedup"].as_f64().unwrap_or(0.0),
            v["linear_speedup"].as_f64().unwrap_or(0.0)
        );
    }
}

/// This process's resident memory (Linux: VmRSS of /proc/self/status), None elsewhere.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<u64>().ok().map(|k| k * 1024)
}

/// The runs of `dit bench --memory N`, and memory sampled about 100 times along them: what ran, and the samples.
async fn memory_samples(
    gpu: &Gpu,
    dit: &Dit,
    b: &BenchArgs,
    latent: usize,
    forwards: usize,
) -> Result<(String, Vec<MemorySample>)> {
    let mut samples: Vec<MemorySample> = vec![];
    let sample = |done| MemorySample { forwards: done, rss_bytes: rss_bytes(), live: gpu.live() };
    let mode;
    if let Some(vae_dir) = &b.vae {
        let vae = loader::vae(&loader::Origin::new(), gpu, &vae_dir.to_string_lossy(), None).await?;
        let steps = if b.sample_steps > 0 { b.sample_steps } else { 10 };
        let sampler = if dit.cfg.arch.is_flow() { SamplerKind::Euler } else { SamplerKind::Ddim };
        mode = format!("generations of one guided image: {steps} {} steps, then the VAE", sampler.name());
        let nc = dit.cfg.num_classes as u32;
        for g in 0..forwards.div_ceil(steps) {
            let mut req = SampleRequest::new(vec![g as u32 % nc]);
            req.steps = Spacing::Even(steps);
            req.sampler = sampler;
            req.seed = g as u64;
            req.latent_size = Some(latent);
            let z = pipeline::sample(gpu, dit, &req, |_| true).await?;
            pipeline::decode(gpu, &vae, &z, 1, latent, latent).await?;
            samples.push(sample((g + 1) * steps));
        }
    } else {
        mode = format!("forwards of one plan (batch {}), each read back", b.batch);
        let plan = dit.plan(gpu, b.batch, latent)?;
        let x: Vec<f32> = (0..plan.x.numel()).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let y: Vec<u32> = vec![0; b.batch];
        let every = (forwards / 100).max(1);
        for i in 0..forwards {
            let t: Vec<f32> = vec![(i % 1000) as f32; b.batch];
            plan.set_inputs(gpu, &x, &t, &y)?;
            gpu.run(plan.dispatches());
            gpu.read_f32(&plan.out).await?;
            if (i + 1) % every == 0 {
                samples.push(sample(i + 1));
            }
        }
    }
    Ok((mode, samples))
}

/// `dit bench --memory N`: N forwards (or generations of them with --vae), memory sampled about 100 times; the slopes
/// are fitted on the samples after the first tenth (warm-up: pipelines, tuning, allocator pools).
async fn bench_memory(gpu: &Gpu, dit: &Dit, b: &BenchArgs, name: &str, latent: usize, forwards: usize) -> Result<()> {
    if forwards < 10 {
        return Err(Error::input("--memory needs at least 10 forwards to fit a slope after warm-up"));
    }
    let t0 = std::time::Instant::now();
    let (mode, samples) = memory_samples(gpu, dit, b, latent, forwards).await?;
    let after: Vec<&MemorySample> = samples.iter().skip(samples.len() / 10).collect();
    let fit = |f: &dyn Fn(&MemorySample) -> Option<f64>| {
        let points: Vec<(f64, f64)> = after.iter().filter_map(|s| Some((s.forwards as f64, f(s)?))).collect();
        (points.len() >= 2).then(|| slope(&points))
    };
    let rss_slope = fit(&|s| s.rss_bytes.map(|v| v as f64));
    let live_slope = fit(&|s| Some(s.live.buffer_bytes as f64 + s.live.texture_bytes as f64));
    let (first, last) = (after[0], &samples[samples.len() - 1]);
    let report = serde_json::json!({
        "model": name,
        "latent": latent,
        "mode": mode,
        "forwards": last.forwards,
        "seconds": t0.elapsed().as_secs_f64(),
        "adapter": gpu.report,
        "rss_bytes_per_forward": rss_slope,
        "live_gpu_bytes_per_forward": live_slope,
        "after_warm_up": first,
        "last": last,
        "samples": samples,
    });
    if b.json {
        println!("{report}");
        return Ok(());
    }
    let mb = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{:.1} MB", v as f64 / 1e6));
    println!("{name} at a {latent}x{latent} latent on {} ({}): {mode}", gpu.report.name, gpu.report.backend);
    println!(
        "{:>9} {:>12} {:>12} {:>14} {:>9} {:>14}",
        "forwards", "RSS", "GPU buffers", "buffer bytes", "textures", "texture bytes"
    );
    for s in [samples[0].clone(), first.clone(), last.clone()] {
        println!(
            "{:>9} {:>12} {:>12} {:>14} {:>9} {:>14}",
            s.forwards,
            mb(s.rss_bytes),
            s.live.buffers,
            s.live.buffer_bytes,
            s.live.textures,
            s.live.texture_bytes
        );
    }
    let per = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1} bytes"));
    println!(
        "after warm-up (forward {}..{}), per forward (linear fit over {} samples): RSS {}, live GPU memory {}; {:.1} s",
        first.forwards,
        last.forwards,
        after.len(),
        per(rss_slope),
        per(live_slope),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
