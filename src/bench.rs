//! Benchmarks shared by `dit bench` and the browser bench: whole-forward time (median of several runs, CPU clock
//! around submit + wait) and per-op GPU time from timestamp queries (or per-dispatch CPU timing without them).

use crate::error::Result;
use crate::gpu::{AdapterReport, Dispatch, Gpu, Tensor};
use crate::util::{median, now_seconds};
use serde::Serialize;
use std::collections::BTreeMap;

/// Time and throughput of one op family within a forward.
#[derive(Clone, Debug, Serialize)]
pub struct OpTiming {
    pub dispatches: usize,
    pub ms: f64,
    pub gflop: f64,
    pub gflops_per_s: f64,
}

/// Result of benchmarking a recorded forward.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardBench {
    pub adapter: AdapterReport,
    pub ms_per_forward: f64,
    pub ms_runs: Vec<f64>,
    /// 2 x multiply-adds of the forward (the dispatches' own count).
    pub gflop_per_forward: f64,
    pub gflops_per_s: f64,
    pub dispatches_per_forward: usize,
    /// Per-op GPU time, summed over one forward; `timer` says how it was measured.
    pub ops: BTreeMap<String, OpTiming>,
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

/// How [`time_variants`] sizes and summarises its runs.
#[derive(Clone, Copy)]
struct Timing {
    /// Copies of a variant per submission: as many as last about this long (1 to 200).
    submit_s: f64,
    /// Rounds; each round submits every variant once, in turn.
    rounds: usize,
    /// Each variant's best round (tuning: the fastest a kernel can go) instead of the median (benchmarks).
    best: bool,
}

/// Benchmarks: median of `repeat` rounds of about 50 ms per variant.
fn bench_timing(repeat: usize) -> Timing {
    Timing { submit_s: 0.05, rounds: repeat.max(1), best: false }
}

/// Tuning at load: best of 3 rounds of about 4 ms per variant.
const TUNE_TIMING: Timing = Timing { submit_s: 0.004, rounds: 3, best: true };

/// Times variants of one op against each other: each is compiled and run once (warm-up), then timed once to size its
/// submissions; the rounds take turns through the variants, so that a change in the machine's load or clocks falls
/// on all of them rather than on whichever ran last. Returns ms per run of each variant.
async fn time_variants(gpu: &Gpu, variants: &[Vec<Dispatch>], timing: Timing) -> Result<Vec<f64>> {
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
/// fastest for that shape on this device ([`Gpu::set_tuned`]); returns the ms of each config (best of 3 rounds of
/// about 4 ms per config, [`TUNE_TIMING`]; infinite for a split-K config whose scratch would not fit a storage binding).
pub async fn tune_linear(gpu: &Gpu, m: usize, k: usize, n: usize) -> Result<Vec<f64>> {
    use crate::ops::{self, Epilogue, LinearKernel};
    let (x, layer, y) = linear_operands(gpu, m, k, n)?;
    // Split-K configs whose scratch buffer would pass the storage binding limit are not tried (infinite time).
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
    gpu.set_tuned("linear", [m, n, k, 0], fastest(&times));
    Ok(times)
}

/// Random x [M, K], a layer of fp16 weights [N, K] with bias (in a storage buffer) and y [M, N], for timing.
fn linear_operands(gpu: &Gpu, m: usize, k: usize, n: usize) -> Result<(Tensor, crate::ops::Linear, Tensor)> {
    let mut rng = crate::util::SplitMix64(((m * 31 + k) * 31 + n) as u64);
    let mut vals = |len: usize, scale: f32| (0..len).map(|_| rng.uniform() * scale).collect::<Vec<f32>>();
    let x = Tensor::from_f32(gpu, "bench x", &[m, k], &vals(m * k, 1.0))?;
    let y = Tensor::from_f32(gpu, "bench y", &[m, n], &vec![0.0; m * n])?;
    let w = Tensor::from_f32_as_f16(gpu, "bench w", &[n, k], &vals(n * k, 1.0 / (k as f32).sqrt()))?;
    let b = Tensor::from_f32_as_f16(gpu, "bench b", &[n], &vals(n, 0.1))?;
    Ok((x, crate::ops::Linear::new(w, b)?, y))
}

/// Deterministic qkv [batch * tokens, 3D] and out [batch * tokens, D] for timing attention.
fn attention_operands(gpu: &Gpu, batch: usize, tokens: usize, heads: usize, hd: usize) -> Result<(Tensor, Tensor)> {
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
/// `head_dim` and records the fastest ([`Gpu::set_tuned`]); returns the ms of each.
pub async fn tune_attention(gpu: &Gpu, batch: usize, tokens: usize, heads: usize, head_dim: usize) -> Result<Vec<f64>> {
    use crate::ops::{self, AttentionKernel};
    let (qt, out) = attention_operands(gpu, batch, tokens, heads, head_dim)?;
    let variants = (0..ops::ATTENTION_SPLITS.len())
        .map(|i| Ok(vec![ops::attention_with(gpu, &qt, &out, tokens, heads, AttentionKernel::Split(i))?]))
        .collect::<Result<Vec<_>>>()?;
    let times = time_variants(gpu, &variants, TUNE_TIMING).await?;
    gpu.set_tuned("attention", [batch, tokens, heads, head_dim], fastest(&times));
    Ok(times)
}

/// Whether this device runs the kernels [`tune_dit`] tunes (GPUs on storage buffers; not CPU adapters or the texture
/// path).
pub fn tunes(gpu: &Gpu) -> bool {
    !gpu.report.is_cpu() && !gpu.report.texture_linears
}

/// Tunes the GPU kernels of a DiT forward at `batch` x `latent`: the workgroup tile of every distinct linear shape
/// ([`tune_linear`]) and the attention split ([`tune_attention`]), each shape once per device, taking what
/// [`tune_cache`] kept from an earlier run and keeping what it finds. In the browser `cache` is the adapter's key in
/// Cache Storage ([`tune_cache::adapter_key_with`]; None: nothing kept). Nothing to do on CPU adapters or on the
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
    let (tokens, heads) = ((latent / dit.cfg.patch_size).pow(2), dit.cfg.num_heads);
    let attention = [batch, tokens, heads, dit.cfg.hidden_size / heads.max(1)];
    let linears: Vec<_> = dit.linear_shapes(batch, latent).into_iter().filter(|s| s.0 >= 32).collect();
    let missing = |gpu: &Gpu| {
        gpu.tuned("attention", attention).is_none()
            || linears.iter().any(|&(m, k, n)| gpu.tuned("linear", [m, n, k, 0]).is_none())
    };
    if !missing(gpu) {
        return Ok(());
    }
    #[cfg(not(target_arch = "wasm32"))]
    tune_cache::load(gpu);
    #[cfg(target_arch = "wasm32")]
    if let Some(key) = cache {
        tune_cache::load_browser(gpu, key).await;
    }
    if !missing(gpu) {
        return Ok(());
    }
    for &(m, k, n) in &linears {
        if gpu.tuned("linear", [m, n, k, 0]).is_none() {
            tune_linear(gpu, m, k, n).await?;
        }
    }
    if gpu.tuned("attention", attention).is_none() {
        let [b, t, h, d] = attention;
        tune_attention(gpu, b, t, h, d).await?;
    }
    #[cfg(not(target_arch = "wasm32"))]
    tune_cache::save(gpu);
    #[cfg(target_arch = "wasm32")]
    if let Some(key) = cache {
        tune_cache::save_browser(gpu, key).await;
    }
    Ok(())
}

/// Tuned choices are kept across runs per adapter: one object per adapter (name, backend, driver, fp16 path and crate
/// version; in the browser also the adapter's vendor, architecture and description), mapping "linear M,N,K" to the
/// tile config's name and "attention B,T,H,D" to the split's. Natively in `$DIT_TUNE_CACHE` (`off`: not kept), else
/// `$XDG_CACHE_HOME/dit-wasm/tuning.json`, else `~/.cache/dit-wasm/tuning.json`; in the browser in Cache Storage
/// ([`tune_cache::CACHE_NAME`]) beside the weights. A missing, unreadable or outdated entry only means tuning again;
/// a choice whose name is no longer a config is ignored, and one that does not fit the device's limits is checked
/// again where it is used.
pub mod tune_cache {
    use crate::gpu::Gpu;
    use crate::ops::{ATTENTION_SPLITS, WG_TILES};
    use std::collections::BTreeMap;

    /// One adapter's choices: "linear M,N,K" or "attention B,T,H,D" to the variant's name.
    pub type Entries = BTreeMap<String, String>;

    /// The adapter's entry name: choices are kept for exactly this adapter, driver and build. `extra` is what the
    /// platform adds (in the browser the adapter's own description, which wgpu does not pass on).
    pub fn adapter_key_with(gpu: &Gpu, extra: &str) -> String {
        let r = &gpu.report;
        let key = format!(
            "{} | {} | {} | {} | dit-wasm {}",
            r.name,
            r.backend,
            r.driver,
            r.f16_weights_path,
            env!("CARGO_PKG_VERSION")
        );
        if extra.is_empty() {
            key
        } else {
            format!("{key} | {extra}")
        }
    }

    /// [`adapter_key_with`] and nothing extra (natively wgpu reports the adapter in full).
    pub fn adapter_key(gpu: &Gpu) -> String {
        adapter_key_with(gpu, "")
    }

    fn split_name(i: usize) -> String {
        let (qw, g) = ATTENTION_SPLITS[i];
        format!("{qw} queries x {g} key groups")
    }

    fn shape(s: &str) -> Option<[usize; 4]> {
        let v: Vec<usize> = s.split(',').map(|x| x.trim().parse().ok()).collect::<Option<_>>()?;
        match v[..] {
            [a, b, c] => Some([a, b, c, 0]),
            [a, b, c, d] => Some([a, b, c, d]),
            _ => None,
        }
    }

    /// Records on `gpu` the choices in `entries` that it has not recorded yet.
    pub fn apply(gpu: &Gpu, entries: &Entries) {
        for (key, name) in entries {
            let Some((op, dims)) = key.split_once(' ') else { continue };
            let Some(dims) = shape(dims) else { continue };
            let choice = match op {
                "linear" => WG_TILES.iter().position(|t| t.to_string() == *name),
                "attention" => (0..ATTENTION_SPLITS.len()).find(|&i| split_name(i) == *name),
                _ => None,
            };
            let op = if op == "linear" { "linear" } else { "attention" };
            if let Some(c) = choice {
                if gpu.tuned(op, dims).is_none() {
                    gpu.set_tuned(op, dims, c);
                }
            }
        }
    }

    /// `gpu`'s recorded choices, by name.
    pub fn entries(gpu: &Gpu) -> Entries {
        gpu.tuned_all()
            .into_iter()
            .map(|(op, s, c)| match op {
                "linear" => (format!("linear {},{},{}", s[0], s[1], s[2]), WG_TILES[c].to_string()),
                _ => (format!("attention {},{},{},{}", s[0], s[1], s[2], s[3]), split_name(c)),
            })
            .collect()
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod file {
        use super::*;
        use std::path::{Path, PathBuf};

        type Cache = BTreeMap<String, Entries>;

        /// Where the cache lives, if anywhere.
        pub fn path() -> Option<PathBuf> {
            match std::env::var("DIT_TUNE_CACHE") {
                Ok(p) if p == "off" => return None,
                Ok(p) if !p.is_empty() => return Some(PathBuf::from(p)),
                _ => {}
            }
            let dir = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))?;
            Some(dir.join("dit-wasm").join("tuning.json"))
        }

        fn read(p: &Path) -> Cache {
            std::fs::read(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
        }

        /// Records on `gpu` the choices kept for its adapter (those not yet recorded).
        pub fn load(gpu: &Gpu) {
            if let Some(p) = path() {
                load_from(&p, gpu);
            }
        }

        /// Adds `gpu`'s choices to the cache file (best effort: a cache that cannot be written is skipped).
        pub fn save(gpu: &Gpu) {
            if let Some(p) = path() {
                save_to(&p, gpu);
            }
        }

        /// [`load`] from a given file.
        pub fn load_from(p: &Path, gpu: &Gpu) {
            if let Some(entries) = read(p).get(&adapter_key(gpu)) {
                apply(gpu, entries);
            }
        }

        /// [`save`] to a given file.
        pub fn save_to(p: &Path, gpu: &Gpu) {
            let mut cache = read(p);
            cache.entry(adapter_key(gpu)).or_default().extend(entries(gpu));
            let Ok(json) = serde_json::to_vec_pretty(&cache) else { return };
            let tmp = p.with_extension("json.tmp");
            let _ = p.parent().map(std::fs::create_dir_all);
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub use file::{load, load_from, path, save, save_to};

    /// The Cache Storage cache holding the browser's tuning entries (one per adapter key).
    pub const CACHE_NAME: &str = "dit-wasm-tuning-v1";

    #[cfg(target_arch = "wasm32")]
    mod browser {
        use super::*;
        use crate::weights::url::{cache_get, cache_put, open_cache};
        use wasm_bindgen::{JsCast, JsValue};
        use wasm_bindgen_futures::JsFuture;

        /// What the browser says about its adapter (`GPUAdapterInfo`: vendor, architecture, device, description),
        /// which wgpu does not pass on; empty where it says nothing.
        pub async fn adapter_info() -> String {
            let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED);
            let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
            let Ok(request) = get(&gpu, "requestAdapter").dyn_into::<js_sys::Function>() else { return String::new() };
            let Ok(promise) = request.call0(&gpu).and_then(|p| p.dyn_into::<js_sys::Promise>()) else {
                return String::new();
            };
            let Ok(adapter) = JsFuture::from(promise).await else { return String::new() };
            let info = get(&adapter, "info");
            ["vendor", "architecture", "device", "description"]
                .iter()
                .filter_map(|k| get(&info, k).as_string().filter(|v| !v.is_empty()))
                .collect::<Vec<_>>()
                .join(" / ")
        }

        fn url(key: &str) -> String {
            format!("https://dit-wasm.invalid/tuning/{}", String::from(js_sys::encode_uri_component(key)))
        }

        /// Records on `gpu` the choices kept for the adapter `key` (best effort).
        pub async fn load_browser(gpu: &Gpu, key: &str) {
            let Some(cache) = open_cache(CACHE_NAME).await else { return };
            let Some(bytes) = cache_get(&cache, &url(key)).await else { return };
            if let Ok(entries) = serde_json::from_slice::<Entries>(&bytes) {
                apply(gpu, &entries);
            }
        }

        /// Keeps `gpu`'s choices under the adapter `key` (best effort).
        pub async fn save_browser(gpu: &Gpu, key: &str) {
            let Some(cache) = open_cache(CACHE_NAME).await else { return };
            if let Ok(json) = serde_json::to_vec(&entries(gpu)) {
                cache_put(&cache, &url(key), &json).await;
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    pub use browser::{adapter_info, load_browser, save_browser};
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
    // The workgroup-memory kernel is for GPUs (on lavapipe it ran at 0.6-0.8x the register-tiled kernel).
    let tiles = if gpu.report.is_cpu() { &[][..] } else { &ops::WG_TILES[..] };
    for (i, t) in tiles.iter().enumerate() {
        variants.push((format!("buffers, workgroup {t}"), buffers.clone(), LinearKernel::Workgroup(i)));
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
    let base = kernels.iter().find(|t| t.kernel.contains("register-tiled")).map_or(1.0, |t| t.ms);
    for t in &mut kernels {
        t.vs_register_tiled = base / t.ms;
    }
    Ok(LinearBench { m, k, n, kernels })
}
