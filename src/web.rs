//! The wasm-bindgen API, a thin layer over the same pipeline as the CLI. The npm package `dit-wasm` (www/lib) runs it
//! in a Worker and gives it types. Errors reach JS as `Error`s with a `kind`: `no-webgpu`, `adapter-limits`,
//! `download`, `not-found`, `gated`, `integrity`, `aborted`, `device-lost`, `invalid-input`, `gpu`.

#![cfg(target_arch = "wasm32")]

use crate::arch::DitConfig;
use crate::diffusion::{CfgChannels, SamplerKind, Spacing};
use crate::error::Error;
use crate::gpu::{F16Mode, Gpu, GpuOptions, LimitsMode, LinearPath};
use crate::loader;
use crate::model::{Dit, GpuWeights, Vae, VaePlan};
use crate::pipeline::{self, to_rgb8, Blend, SampleRequest, Sampling};
use crate::weights::ModelIndex;
use js_sys::{Array, Object, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The `kind` a JS caller sees for an error.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::NoAdapter(_) => "no-webgpu",
        Error::Limit { .. } => "adapter-limits",
        Error::Download { .. } => "download",
        Error::NotFound { .. } => "not-found",
        Error::Gated { .. } => "gated",
        Error::Integrity { .. } => "integrity",
        Error::Format { .. } | Error::MissingTensor(_) | Error::Shape { .. } => "integrity",
        Error::Cancelled => "aborted",
        Error::DeviceLost(_) => "device-lost",
        Error::Input(_) | Error::Config(_) => "invalid-input",
        Error::Device(_) | Error::Gpu(_) | Error::Op(_) | Error::Io { .. } => "gpu",
    }
}

fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("DitError");
    let _ = Reflect::set(&err, &"kind".into(), &kind(&e).into());
    err.into()
}

fn set(o: &Object, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &k.into(), &v.into());
}

fn progress(f: &Option<js_sys::Function>, phase: &str) {
    if let Some(f) = f {
        let ev = Object::new();
        set(&ev, "phase", phase);
        let _ = f.call1(&JsValue::NULL, &ev);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOptions {
    model: String,
    /// Absent for a Hub pipeline, whose `vae/` is used.
    #[serde(default)]
    vae: Option<String>,
    /// Where `hf://` locations resolve (default the Hugging Face Hub).
    #[serde(default)]
    hub_endpoint: Option<String>,
    #[serde(default)]
    cache: Option<String>,
    #[serde(default)]
    f16: Option<String>,
    #[serde(default)]
    linear: Option<String>,
    #[serde(default)]
    max_storage_buffer_binding_size: Option<f64>,
    /// "adapter" (default): what the adapter offers; "default": none above WebGPU's defaults.
    #[serde(default)]
    limits: Option<String>,
    /// Milliseconds a response or the next bytes of a body may take before the request is retried.
    #[serde(default)]
    timeout_ms: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Steps {
    Count(u32),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateOptions {
    class_labels: Vec<u32>,
    #[serde(default)]
    cfg_scale: Option<f32>,
    #[serde(default)]
    steps: Option<Steps>,
    #[serde(default)]
    sampler: Option<String>,
    #[serde(default)]
    cfg_channels: Option<String>,
    #[serde(default)]
    seed: Option<f64>,
    /// Decode the current estimate every N steps for a preview (0: never).
    #[serde(default)]
    preview_every: Option<usize>,
    /// Every image's class blended with another: `{ with, alpha }` (types.ts `ClassBlend`).
    #[serde(default)]
    blend: Option<BlendOptions>,
    /// A flow map's custom grid from 1 down to 0 (`[1, 0.55, 0]`).
    #[serde(default)]
    grid: Option<Vec<f64>>,
    /// α-Flow's consistency steps (re-noise between jumps).
    #[serde(default)]
    consistency: Option<bool>,
    /// A flow map's time shift (DMF 512 px: 1.5).
    #[serde(default)]
    shift: Option<f64>,
    /// Where a flow map's guidance above 1 applies: `[lo, hi]`.
    #[serde(default)]
    guidance_interval: Option<[f64; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlendOptions {
    with: u32,
    alpha: f32,
}

/// A loaded DiT + VAE on this page's GPU.
#[wasm_bindgen]
pub struct WasmSampler {
    gpu: Gpu,
    dit: Dit,
    vae: Vae,
    vae_plan: VaePlan,
    dit_index: ModelIndex,
}

/// Device options from the JS `f16` ("auto" | "packed") and `linear` ("auto" | "buffers" | "textures") strings.
fn gpu_options(f16: Option<&str>, linear: Option<&str>) -> GpuOptions {
    GpuOptions {
        f16: if f16 == Some("packed") { F16Mode::Packed } else { F16Mode::Auto },
        linear_path: match linear {
            Some("buffers") => LinearPath::Buffers,
            Some("textures") => LinearPath::Textures,
            _ => LinearPath::Auto,
        },
        ..Default::default()
    }
}

/// The JS `limits` option: "adapter" (default) or "default" (WebGPU's default limits); anything else is
/// `invalid-input`.
fn limits_mode(limits: Option<&str>) -> Result<LimitsMode, JsValue> {
    limits.map_or(Ok(LimitsMode::Adapter), |l| LimitsMode::parse(l).map_err(to_js))
}

fn images_js(images: &[f32], n: usize, h: usize, w: usize) -> Array {
    let out = Array::new();
    for rgb in to_rgb8(images, n, h, w) {
        let mut rgba = vec![255u8; h * w * 4];
        for p in 0..h * w {
            rgba[p * 4..p * 4 + 3].copy_from_slice(&rgb[p * 3..p * 3 + 3]);
        }
        out.push(&js_sys::Uint8ClampedArray::from(rgba.as_slice()));
    }
    out
}

#[wasm_bindgen]
impl WasmSampler {
    /// Opens the GPU and loads both models. `options`: `{ model, vae?, hubEndpoint?, cache?: "cache-storage" |
    /// "none", f16?: "auto" | "packed", linear?: "auto" | "buffers" | "textures", limits?: "adapter" | "default" }`.
    /// `on_progress` receives `{ phase: "adapter" | "download" | "compile" | "ready", file?, loaded?, total?, cached?
    /// }`.
    pub async fn create(options: JsValue, on_progress: Option<js_sys::Function>) -> Result<WasmSampler, JsValue> {
        let opts: CreateOptions =
            serde_wasm_bindgen::from_value(options).map_err(|e| to_js(Error::input(format!("bad options: {e}"))))?;
        let gpu_present = Reflect::get(&js_sys::global(), &"navigator".into())
            .ok()
            .and_then(|n| Reflect::get(&n, &"gpu".into()).ok())
            .is_some_and(|g| !g.is_undefined() && !g.is_null());
        if !gpu_present {
            return Err(to_js(Error::NoAdapter(
                "this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome, Edge or Safari, or enable WebGPU, on an https or localhost page".into(),
            )));
        }
        let limits = limits_mode(opts.limits.as_deref())?;
        progress(&on_progress, "adapter");
        let gpu_opts = GpuOptions {
            max_storage_binding: opts.max_storage_buffer_binding_size.map(|v| v as u64),
            limits,
            ..gpu_options(opts.f16.as_deref(), opts.linear.as_deref())
        };
        let gpu = Gpu::new(&gpu_opts).await.map_err(|e| match e {
            Error::NoAdapter(_) => to_js(Error::NoAdapter(
                "this browser has WebGPU but it offers no adapter (it may be disabled for this GPU or driver, or behind a flag such as chrome://flags/#enable-unsafe-webgpu on Linux)".into(),
            )),
            e => to_js(e),
        })?;
        let cache = opts.cache.as_deref() != Some("none");
        let timeout = opts.timeout_ms.map_or(crate::weights::url::DEFAULT_TIMEOUT_MS, |t| t.clamp(1.0, 3.6e6) as u32);
        let hub_endpoint = opts.hub_endpoint.unwrap_or_else(|| crate::hub::DEFAULT_ENDPOINT.to_string());
        let fetch = loader::Fetch { cache, timeout_ms: timeout, on_progress: on_progress.clone(), hub_endpoint };
        let (dit_index, dit, vae) =
            loader::models_from_urls(&gpu, &opts.model, opts.vae.as_deref().filter(|v| !v.is_empty()), &fetch)
                .await
                .map_err(to_js)?;
        progress(&on_progress, "compile");
        // Tuning (GPUs only) is kept in Cache Storage per adapter, unless caching is off.
        let tune_key = if cache && crate::tune::tunes(&gpu) {
            Some(crate::tune::cache::adapter_key_with(&gpu, &crate::tune::cache::adapter_info().await))
        } else {
            None
        };
        let latent = dit.cfg.input_size;
        let vae_plan = vae.plan(&gpu, latent, latent).map_err(to_js)?;
        pipeline::warm_up(&gpu, &dit, &vae_plan, tune_key.as_deref()).await.map_err(to_js)?;
        progress(&on_progress, "ready");
        Ok(WasmSampler { gpu, dit, vae, vae_plan, dit_index })
    }

    /// Resolves with the reason once this sampler's GPU device is lost (a driver reset, the browser's GPU process
    /// restarting); it stays pending while the device lives. After a loss every call fails with kind `device-lost`:
    /// create the sampler again (the package does, in a new worker, from Cache Storage).
    pub fn lost(&self) -> js_sys::Promise {
        let lost = self.gpu.lost();
        wasm_bindgen_futures::future_to_promise(async move { Ok(JsValue::from_str(&lost.await)) })
    }

    /// `{ adapter: {...}, model: { preset?, arch: "dit" | "sit", numClasses, classNames?, latentSize, imageSize,
    /// parameters, bytes }, pipelines: { count, compileMs, kernels } }`, `pipelines` being those compiled so far
    /// ([`crate::gpu::PipelineStats`]; right after `create`, those the load compiled).
    pub fn info(&self) -> JsValue {
        let o = Object::new();
        set(&o, "adapter", serde_wasm_bindgen::to_value(&self.gpu.report).unwrap_or(JsValue::NULL));
        let m = Object::new();
        let cfg = &self.dit.cfg;
        if let Some(p) = cfg.preset_name() {
            set(&m, "preset", p);
        }
        set(&m, "arch", cfg.arch.name());
        set(&m, "numClasses", cfg.num_classes as u32);
        if let Some(names) = self.dit_index.metadata.extra.get("class_names") {
            set(&m, "classNames", serde_wasm_bindgen::to_value(names).unwrap_or(JsValue::NULL));
        }
        set(&m, "latentSize", cfg.input_size as u32);
        set(&m, "imageSize", (cfg.input_size * self.vae.cfg.upscale()) as u32);
        set(&m, "parameters", cfg.parameters() as f64);
        set(&m, "bytes", self.dit_index.metadata.total_size as f64);
        set(&o, "model", m);
        // As plain objects (serde_wasm_bindgen's default makes a map a JS `Map`).
        let plain = serde_wasm_bindgen::Serializer::json_compatible();
        set(&o, "pipelines", self.gpu.pipeline_stats().serialize(&plain).unwrap_or(JsValue::NULL));
        o.into()
    }

    /// Generates images. `options`: `{ classLabels, cfgScale?: 4, steps?: 250 | "ddim50", sampler?: "ddpm" |
    /// "ddim" | "dpmpp2m" (a DiT; ddpm by default) | "euler" | "heun" | "euler-maruyama" | "dopri5" (a SiT; euler by
    /// default), cfgChannels?: "official" | "all", seed?: 0, previewEvery?: 0, blend?: { with, alpha } }`. `on_step` receives
    /// `{ step, total, timestep, elapsed, preview? }` and returns false to cancel (the promise then rejects with kind
    /// `aborted`). Resolves to `{ width, height, images: Uint8ClampedArray[] (RGBA), seed, gpuMemory }`, `gpuMemory`
    /// being the buffers and textures alive on the device once the generation is done ([`crate::gpu::LiveCounts`]).
    pub async fn generate(&self, options: JsValue, on_step: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let o: GenerateOptions =
            serde_wasm_bindgen::from_value(options).map_err(|e| to_js(Error::input(format!("bad options: {e}"))))?;
        if let Some(why) = self.gpu.lost_reason() {
            return Err(to_js(Error::DeviceLost(why)));
        }
        let seed = o.seed.unwrap_or(0.0);
        if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 9007199254740991.0) {
            return Err(to_js(Error::input(format!("seed {seed} must be a whole number from 0 to 2^53 - 1"))));
        }
        // What the options leave out keeps the pipeline's defaults for this model's family.
        let family = self.dit.cfg.arch;
        let mut req = SampleRequest { seed: seed as u64, ..SampleRequest::new(o.class_labels) };
        req.cfg_scale = o.cfg_scale.unwrap_or_else(|| pipeline::default_cfg_scale(family));
        req.steps = match o.steps {
            None => match &o.grid {
                Some(g) => Spacing::Even(g.len().saturating_sub(1)),
                None => pipeline::default_steps(family),
            },
            Some(Steps::Count(k)) => Spacing::Even(k as usize),
            Some(Steps::Text(s)) => Spacing::parse(&s).map_err(to_js)?,
        };
        req.flow_map = pipeline::FlowMapOptions {
            grid: o.grid,
            consistency: o.consistency.unwrap_or(false),
            shift: o.shift.unwrap_or(1.0),
            guidance_interval: o.guidance_interval.map(|[lo, hi]| (lo, hi)),
        };
        // A sampler of the other kind (a DDPM on a SiT, a flow on a DiT) is refused by the pipeline (`invalid-input`).
        req.sampler = match &o.sampler {
            Some(s) => SamplerKind::parse(s).map_err(to_js)?,
            None => crate::pipeline::default_sampler(self.dit.cfg.arch),
        };
        if let Some(c) = &o.cfg_channels {
            req.cfg_channels = CfgChannels::parse(c).map_err(to_js)?;
        }
        // Checked (a real class, alpha in [0, 1]) by the pipeline, as the CLI's.
        req.blend = o.blend.map(|b| Blend { with: b.with, alpha: b.alpha });
        let n = req.classes.len();
        let lat = self.dit.cfg.input_size;
        let size = lat * self.vae.cfg.upscale();
        let vae_scale = self.vae.cfg.scaling_factor;
        let every = o.preview_every.unwrap_or(0);
        let mut run = Sampling::start(&self.gpu, &self.dit, &req).await.map_err(to_js)?;
        while let Some(info) = run.step().await.map_err(to_js)? {
            if let Some(f) = &on_step {
                let ev = Object::new();
                set(&ev, "step", info.step as u32);
                set(&ev, "total", info.total as u32);
                set(&ev, "timestep", info.timestep as u32);
                set(&ev, "elapsed", info.elapsed);
                if every > 0 && (info.step % every == 0 || info.step == info.total) {
                    let est = run.estimate().await.map_err(to_js)?;
                    let est = pipeline::to_vae_latents(&self.dit.cfg, vae_scale, &est);
                    let imgs = pipeline::decode_with(&self.gpu, &self.vae_plan, &est, n).await.map_err(to_js)?;
                    let p = Object::new();
                    set(&p, "width", size as u32);
                    set(&p, "height", size as u32);
                    set(&p, "images", images_js(&imgs, n, size, size));
                    set(&ev, "preview", p);
                }
                let keep_going = f.call1(&JsValue::NULL, &ev)?;
                if keep_going.is_falsy() && !keep_going.is_undefined() {
                    return Err(to_js(Error::Cancelled));
                }
            }
        }
        let latents = run.finish().await.map_err(to_js)?;
        let latents = pipeline::to_vae_latents(&self.dit.cfg, vae_scale, &latents);
        let images = pipeline::decode_with(&self.gpu, &self.vae_plan, &latents, n).await.map_err(to_js)?;
        let out = Object::new();
        set(&out, "width", size as u32);
        set(&out, "height", size as u32);
        set(&out, "images", images_js(&images, n, size, size));
        set(&out, "seed", seed);
        set(&out, "gpuMemory", serde_wasm_bindgen::to_value(&self.gpu.live()).unwrap_or(JsValue::NULL));
        Ok(out.into())
    }
}

/// Freeing a sampler (`free()` in JS) releases its GPU device at once, rather than when the browser collects it.
impl Drop for WasmSampler {
    fn drop(&mut self) {
        self.gpu.destroy();
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BenchKernelsOptions {
    /// `[[M, K, N], ...]`; default DiT-XL/2's four linear shapes at 256 px, batch 2.
    shapes: Option<Vec<[usize; 3]>>,
    repeat: Option<usize>,
    f16: Option<String>,
}

/// Times every linear kernel (texture, register-tiled buffer, simple buffer) on each shape, on a device of its own.
/// Returns JSON text, the same object `dit bench --kernels --json` prints: `{ adapter, linear: [{ m, k, n, kernels:
/// [{ kernel, ms, gflops_per_s, vs_register_tiled }] }] }`.
#[wasm_bindgen(js_name = benchKernels)]
pub async fn bench_kernels(options: JsValue) -> Result<JsValue, JsValue> {
    let opts: BenchKernelsOptions = if options.is_undefined() || options.is_null() {
        BenchKernelsOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(|e| to_js(Error::input(format!("bad options: {e}"))))?
    };
    let gpu = Gpu::new(&gpu_options(opts.f16.as_deref(), None)).await.map_err(to_js)?;
    let shapes: Vec<[usize; 3]> =
        opts.shapes.unwrap_or_else(|| crate::bench::DIT_XL_LINEARS.iter().map(|&(m, k, n)| [m, k, n]).collect());
    let mut all = vec![];
    for [m, k, n] in shapes {
        if m == 0 || k % 4 != 0 || n % 4 != 0 || m * k.max(n) > 1 << 26 {
            return Err(to_js(Error::input(format!(
                "shape [{m}, {k}, {n}]: M must be positive, K and N multiples of 4, and the tensors at most 256 MiB"
            ))));
        }
        all.push(crate::bench::bench_linear(&gpu, m, k, n, opts.repeat.unwrap_or(3)).await.map_err(to_js)?);
    }
    let json = serde_json::json!({ "adapter": gpu.report, "linear": all });
    Ok(JsValue::from_str(&json.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BenchForwardOptions {
    /// A paper preset: "S/2", "B/4", "XL/2", ... with random weights; or else `model`.
    preset: Option<String>,
    /// A DiT's location (a model directory's URL, as `create`'s `model`), read without Cache Storage.
    model: Option<String>,
    res: Option<usize>,
    batch: Option<usize>,
    repeat: Option<usize>,
    /// Untimed forwards first (default 1), as `dit bench --warmup`.
    warmup: Option<usize>,
    f16: Option<String>,
    linear: Option<String>,
    /// "adapter" (default) or "default" (WebGPU's default limits), as `create`'s.
    limits: Option<String>,
}

/// One DiT forward, timed like `dit bench --preset P --random-weights --no-baseline --json`: of a paper preset with
/// random fp16 weights (nothing downloaded), or of the DiT at `model`. Returns that JSON text (`ms_per_forward`,
/// per-op table, dispatches) with the pipelines compiled.
#[wasm_bindgen(js_name = benchForward)]
pub async fn bench_forward(options: JsValue) -> Result<JsValue, JsValue> {
    let opts: BenchForwardOptions =
        serde_wasm_bindgen::from_value(options).map_err(|e| to_js(Error::input(format!("bad options: {e}"))))?;
    let gpu_opts = GpuOptions {
        limits: limits_mode(opts.limits.as_deref())?,
        ..gpu_options(opts.f16.as_deref(), opts.linear.as_deref())
    };
    let gpu = Gpu::new(&gpu_opts).await.map_err(to_js)?;
    let batch = opts.batch.unwrap_or(2).max(1);
    let (name, dit) = match (&opts.preset, &opts.model) {
        (Some(preset), None) => (preset.clone(), random_dit(&gpu, preset, opts.res.unwrap_or(256)).map_err(to_js)?),
        (None, Some(model)) => {
            let fetch = loader::Fetch {
                cache: false,
                timeout_ms: crate::weights::url::DEFAULT_TIMEOUT_MS,
                on_progress: None,
                hub_endpoint: crate::hub::DEFAULT_ENDPOINT.to_string(),
            };
            (model.clone(), loader::dit_from_url(&gpu, model, &fetch).await.map_err(to_js)?.1)
        }
        _ => return Err(to_js(Error::input("give either `preset` or `model`"))),
    };
    let latent = dit.cfg.input_size;
    let warmup = opts.warmup.unwrap_or(1);
    let r = crate::bench::bench_dit_forward(&gpu, &dit, batch, latent, warmup, opts.repeat.unwrap_or(5))
        .await
        .map_err(to_js)?;
    let json = serde_json::json!({
        "model": name, "latent": latent, "batch": batch,
        "linear_path": gpu.report.linear_path(),
        "output_finite": r.finite,
        "bench": r.bench,
        "pipelines": gpu.pipeline_stats(),
    });
    Ok(JsValue::from_str(&json.to_string()))
}

/// A paper preset's DiT at `res` px with random fp16 weights (the benchmarks' model: nothing downloaded).
fn random_dit(gpu: &Gpu, preset: &str, res: usize) -> crate::error::Result<Dit> {
    random_dit_as(gpu, preset, res, crate::arch::Family::Dit)
}

/// [`random_dit`] trained as `family` (a flow map: 4 output channels, a second embedder or DMF's split).
fn random_dit_as(gpu: &Gpu, preset: &str, res: usize, family: crate::arch::Family) -> crate::error::Result<Dit> {
    let cfg = DitConfig::preset(preset, res)?.trained_as(family);
    let w = GpuWeights::random(gpu, &crate::arch::dit_tensors(&cfg), 0)?;
    Dit::load(gpu, cfg, w)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BenchImageOptions {
    /// A paper preset with random weights (and a random SD VAE): "S/2", "XL/2", ...
    preset: String,
    /// What it is trained as: "dit" (default), "sit", "meanflow" or "dmf".
    arch: Option<String>,
    res: Option<usize>,
    /// Sampler steps; default 50.
    steps: Option<usize>,
    /// "ddpm" | "ddim" | "dpmpp2m" | ...; default DDIM.
    sampler: Option<String>,
    f16: Option<String>,
    linear: Option<String>,
}

/// One whole image (guided steps, then the VAE decode) of a paper preset with random weights, timed twice like `dit
/// bench --preset P --random-weights --sample-steps N --sampler S`: returns the JSON text of `{ model, res,
/// generate_one_image: { steps, sampler, cfg, seconds_first, seconds } }`.
#[wasm_bindgen(js_name = benchImage)]
pub async fn bench_image(options: JsValue) -> Result<JsValue, JsValue> {
    let opts: BenchImageOptions =
        serde_wasm_bindgen::from_value(options).map_err(|e| to_js(Error::input(format!("bad options: {e}"))))?;
    let gpu = Gpu::new(&gpu_options(opts.f16.as_deref(), opts.linear.as_deref())).await.map_err(to_js)?;
    let res = opts.res.unwrap_or(256);
    let family = crate::arch::Family::parse(opts.arch.as_deref().unwrap_or("dit")).map_err(to_js)?;
    let dit = random_dit_as(&gpu, &opts.preset, res, family).map_err(to_js)?;
    let vae_cfg = crate::arch::VaeConfig::sd();
    let w = GpuWeights::random(&gpu, &crate::arch::vae_tensors(&vae_cfg), 0).map_err(to_js)?;
    let vae = Vae::load(&gpu, vae_cfg, w).map_err(to_js)?;
    let sampler = match opts.sampler.as_deref() {
        Some(s) => SamplerKind::parse(s).map_err(to_js)?,
        None if family.is_flow_map() => SamplerKind::FlowMap,
        None => SamplerKind::Ddim,
    };
    let r = crate::bench::bench_image(&gpu, &dit, &vae, opts.steps.unwrap_or(50).max(1), Some(sampler))
        .await
        .map_err(to_js)?;
    let json = serde_json::json!({ "model": opts.preset, "res": res, "generate_one_image": r });
    Ok(JsValue::from_str(&json.to_string()))
}
