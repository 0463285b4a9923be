//! The wasm-bindgen API, a thin layer over the same loader and pipeline as the CLI. The npm package `dit-wasm`
//! (www/lib) runs it in a Worker. Everything that crosses is a Rust type of [`types`], (de)serialised with
//! `serde-wasm-bindgen` and declared to TypeScript by `tsify`: an option the type does not allow is an `invalid-input`
//! error, and a value that cannot be serialised is an error too. Errors reach JS as `Error`s with a `kind`
//! ([`ErrorKind`]).

#![cfg(target_arch = "wasm32")]

mod types;

use crate::arch::{DitConfig, Family};
use crate::diffusion::{SamplerKind, Spacing};
use crate::error::Error;
use crate::gpu::{Gpu, GpuOptions, LinearPath};
use crate::loader;
use crate::model::{Dit, GpuWeights, Vae, VaePlan};
use crate::pipeline::{self, to_rgb8, Blend, SampleRequest, Sampling};
use crate::weights::url::{LoadProgress, Phase};
use crate::weights::ModelIndex;
use serde::Serialize;
use tsify::{Ts, Tsify};
pub use types::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The `kind` a JS caller sees for an error.
fn kind(e: &Error) -> ErrorKind {
    match e {
        Error::NoAdapter(_) => ErrorKind::NoWebgpu,
        Error::Limit { .. } => ErrorKind::AdapterLimits,
        Error::Download { .. } => ErrorKind::Download,
        Error::NotFound { .. } => ErrorKind::NotFound,
        Error::Gated { .. } => ErrorKind::Gated,
        Error::Integrity { .. } => ErrorKind::Integrity,
        Error::Format { .. } | Error::MissingTensor(_) | Error::Shape { .. } => ErrorKind::Integrity,
        Error::Cancelled => ErrorKind::Aborted,
        Error::DeviceLost(_) => ErrorKind::DeviceLost,
        Error::Input(_) | Error::Config(_) => ErrorKind::InvalidInput,
        Error::Device(_) | Error::Gpu(_) | Error::Op(_) | Error::Io { .. } => ErrorKind::Gpu,
    }
}

/// An error as JS receives it: an `Error` named `DitError` with the message and its `kind`.
fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("DitError");
    // A unit variant always serialises (to its name).
    let kind = serde_wasm_bindgen::to_value(&kind(&e)).unwrap_or_else(|_| "gpu".into());
    // A JS `Error` (for its stack and `instanceof`) is no serde value: its `kind` is set as a property.
    let _ = js_sys::Reflect::set(&err, &"kind".into(), &kind);
    err.into()
}

/// The options `options` as `T`: anything the type does not allow is an `invalid-input` error naming it.
fn options_of<T: Tsify + serde::de::DeserializeOwned>(options: &Ts<T>) -> Result<T, JsValue>
where
    T::JsType: Clone,
{
    options.to_rust().map_err(|e| to_js(Error::input(format!("bad options: {e}"))))
}

/// `value` as a JS value: maps as plain objects, numbers as numbers; one that cannot be is an error.
fn to_value<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let ser = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value.serialize(&ser).map_err(|e| to_js(Error::Op(format!("a result could not be handed to JavaScript: {e}"))))
}

/// [`to_value`], typed as `T`'s TypeScript declaration.
fn to_ts<T: Tsify + Serialize>(value: &T) -> Result<Ts<T>, JsValue> {
    to_value(value).map(Ts::new_unchecked)
}

fn progress(f: &Option<js_sys::Function>, phase: Phase) {
    LoadProgress { phase, ..LoadProgress::default() }.send(f);
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

/// A device with the options' fp16 path, linear path and limits.
async fn open_gpu(f16: Option<F16Option>, linear: Option<LinearPath>, rest: GpuOptions) -> Result<Gpu, JsValue> {
    let opts = GpuOptions { f16: f16.unwrap_or_default().into(), linear_path: linear.unwrap_or_default(), ..rest };
    Gpu::new(&opts).await.map_err(|e| match e {
        Error::NoAdapter(_) => to_js(Error::NoAdapter(
            "this browser has WebGPU but it offers no adapter (it may be disabled for this GPU or driver, or behind a flag such as chrome://flags/#enable-unsafe-webgpu on Linux)".into(),
        )),
        e => to_js(e),
    })
}

/// Whether this context has WebGPU at all (`navigator.gpu`).
fn has_webgpu() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// RGBA images from the decoder's output, one typed array each.
fn images(rgb_images: &[f32], n: usize, size: usize) -> Images {
    let out = js_sys::Array::new();
    for rgb in to_rgb8(rgb_images, n, size, size) {
        let mut rgba = vec![255u8; size * size * 4];
        for p in 0..size * size {
            rgba[p * 4..p * 4 + 3].copy_from_slice(&rgb[p * 3..p * 3 + 3]);
        }
        out.push(&js_sys::Uint8ClampedArray::from(rgba.as_slice()));
    }
    Images { width: size as u32, height: size as u32, images: out }
}

#[wasm_bindgen]
impl WasmSampler {
    /// Opens the GPU and loads both models. `on_progress` receives each [`LoadProgress`].
    pub async fn create(
        options: Ts<CreateOptions>,
        #[wasm_bindgen(unchecked_param_type = "((event: LoadProgress) => void) | undefined")] on_progress: Option<
            js_sys::Function,
        >,
    ) -> Result<WasmSampler, JsValue> {
        let opts = options_of(&options)?;
        if !has_webgpu() {
            return Err(to_js(Error::NoAdapter(
                "this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome, Edge or Safari, or enable WebGPU, on an https or localhost page".into(),
            )));
        }
        progress(&on_progress, Phase::Adapter);
        let rest = GpuOptions {
            max_storage_binding: opts.max_storage_buffer_binding_size.map(|v| v as u64),
            limits: opts.limits.unwrap_or_default(),
            ..Default::default()
        };
        let gpu = open_gpu(opts.f16, opts.linear, rest).await?;
        let cache = opts.cache.unwrap_or_default() == CacheOption::CacheStorage;
        let timeout = opts.timeout_ms.map_or(crate::weights::url::DEFAULT_TIMEOUT_MS, |t| t.clamp(1.0, 3.6e6) as u32);
        let hub_endpoint = opts.hub_endpoint.unwrap_or_else(|| crate::hub::DEFAULT_ENDPOINT.to_string());
        let fetch = loader::Fetch { cache, timeout_ms: timeout, on_progress: on_progress.clone(), hub_endpoint };
        let req =
            loader::Request { dit: &opts.model, vae: opts.vae.as_deref(), batch: loader::FIRST_BATCH, need_vae: true };
        let m = loader::models(&loader::Origin::new(fetch), &gpu, &req).await.map_err(to_js)?;
        let vae = m.vae.ok_or_else(|| to_js(loader::no_vae(&opts.model)))?;
        progress(&on_progress, Phase::Compile);
        // Tuning (GPUs only) is kept in Cache Storage per adapter, unless caching is off.
        let tune_key = if cache && crate::tune::tunes(&gpu) {
            Some(crate::tune::cache::adapter_key_with(&gpu, &crate::tune::cache::adapter_info().await))
        } else {
            None
        };
        let latent = m.dit.cfg.input_size;
        let vae_plan = vae.plan(&gpu, latent, latent).map_err(to_js)?;
        pipeline::warm_up(&gpu, &m.dit, &vae_plan, tune_key.as_deref()).await.map_err(to_js)?;
        progress(&on_progress, Phase::Ready);
        Ok(WasmSampler { gpu, dit: m.dit, vae, vae_plan, dit_index: m.index })
    }

    /// Resolves with the reason once this sampler's GPU device is lost (a driver reset, the browser's GPU process
    /// restarting); it stays pending while the device lives. After a loss every call fails with kind `device-lost`:
    /// create the sampler again (the package does, in a new worker, from Cache Storage).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn lost(&self) -> js_sys::Promise {
        let lost = self.gpu.lost();
        wasm_bindgen_futures::future_to_promise(async move { Ok(JsValue::from_str(&lost.await)) })
    }

    /// The adapter, the model and the pipelines compiled so far ([`crate::gpu::PipelineStats`]; right after
    /// `create`, those the load compiled).
    pub fn info(&self) -> Result<Ts<SamplerInfo>, JsValue> {
        let cfg = &self.dit.cfg;
        let class_names = match self.dit_index.metadata.extra.get("class_names") {
            Some(names) => Some(serde_json::from_value(names.clone()).map_err(|e| {
                to_js(Error::format(crate::weights::INDEX_FILE, format!("class_names is not a list of strings ({e})")))
            })?),
            None => None,
        };
        let model = ModelInfo {
            preset: cfg.preset_name(),
            arch: cfg.arch,
            num_classes: cfg.num_classes as u32,
            class_names,
            latent_size: cfg.input_size as u32,
            image_size: (cfg.input_size * self.vae.cfg.upscale()) as u32,
            parameters: cfg.parameters() as f64,
            bytes: self.dit_index.metadata.total_size as f64,
        };
        to_ts(&SamplerInfo { adapter: self.gpu.report.clone(), model, pipelines: self.gpu.pipeline_stats() })
    }

    /// Generates images. `on_step` receives each [`StepEvent`] and returns false to cancel (the promise then rejects
    /// with kind `aborted`). Resolves to the images (RGBA), the seed and the GPU memory alive once the generation is
    /// done ([`crate::gpu::LiveCounts`]).
    pub async fn generate(
        &self,
        options: Ts<GenerateOptions>,
        #[wasm_bindgen(unchecked_param_type = "((event: StepEvent) => boolean | undefined) | undefined")]
        on_step: Option<js_sys::Function>,
    ) -> Result<Ts<GenerateResult>, JsValue> {
        let o = options_of(&options)?;
        if let Some(why) = self.gpu.lost_reason() {
            return Err(to_js(Error::DeviceLost(why)));
        }
        let every = o.preview_every.unwrap_or(0);
        let req = self.request(o).map_err(to_js)?;
        let (n, seed) = (req.classes.len(), req.seed as f64);
        let mut run = Sampling::start(&self.gpu, &self.dit, &req).await.map_err(to_js)?;
        while let Some(info) = run.step().await.map_err(to_js)? {
            let Some(f) = &on_step else { continue };
            let preview = if every > 0 && (info.step % every == 0 || info.step == info.total) {
                Some(self.decode(&run.estimate().await.map_err(to_js)?, n).await?)
            } else {
                None
            };
            let ev = StepEvent {
                step: info.step as u32,
                total: info.total as u32,
                timestep: info.timestep as u32,
                elapsed: info.elapsed,
                preview,
            };
            let keep_going = f.call1(&JsValue::NULL, &to_value(&ev)?)?;
            if keep_going.is_falsy() && !keep_going.is_undefined() {
                return Err(to_js(Error::Cancelled));
            }
        }
        let images = self.decode(&run.finish().await.map_err(to_js)?, n).await?;
        to_ts(&GenerateResult { images, seed, gpu_memory: self.gpu.live() })
    }
}

impl WasmSampler {
    /// The pipeline's request from `generate`'s options; what they leave out keeps the pipeline's defaults for this
    /// model's family. Ranges (seed, blend, sampler family) are checked here or by the pipeline, as the CLI's.
    fn request(&self, o: GenerateOptions) -> crate::error::Result<SampleRequest> {
        let seed = o.seed.unwrap_or(0.0);
        if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 9007199254740991.0) {
            return Err(Error::input(format!("seed {seed} must be a whole number from 0 to 2^53 - 1")));
        }
        let family = self.dit.cfg.arch;
        let mut req = SampleRequest { seed: seed as u64, ..SampleRequest::new(o.class_labels) };
        req.cfg_scale = o.cfg_scale.unwrap_or_else(|| pipeline::default_cfg_scale(family));
        req.steps = match o.steps {
            None => match &o.grid {
                Some(g) => Spacing::Even(g.len().saturating_sub(1)),
                None => pipeline::default_steps(family),
            },
            Some(Steps::Count(k)) => Spacing::Even(k as usize),
            Some(Steps::Text(s)) => Spacing::parse(&s)?,
        };
        req.flow_map = pipeline::FlowMapOptions {
            grid: o.grid,
            consistency: o.consistency.unwrap_or(false),
            shift: o.shift.unwrap_or(1.0),
            guidance_interval: o.guidance_interval.map(|[lo, hi]| (lo, hi)),
        };
        // A sampler of the other kind (a DDPM on a SiT, a flow on a DiT) is refused by the pipeline.
        req.sampler = o.sampler.unwrap_or_else(|| pipeline::default_sampler(family));
        if let Some(c) = o.cfg_channels {
            req.cfg_channels = c;
        }
        req.blend = o.blend.map(|b| Blend { with: b.with, alpha: b.alpha });
        Ok(req)
    }

    /// Decodes `n` latents of the DiT's space into RGBA images.
    async fn decode(&self, latents: &[f32], n: usize) -> Result<Images, JsValue> {
        let latents = pipeline::to_vae_latents(&self.dit.cfg, self.vae.cfg.scaling_factor, latents);
        let rgb = pipeline::decode_with(&self.gpu, &self.vae_plan, &latents, n).await.map_err(to_js)?;
        Ok(images(&rgb, n, self.dit.cfg.input_size * self.vae.cfg.upscale()))
    }
}

/// Freeing a sampler (`free()` in JS) releases its GPU device at once, rather than when the browser collects it.
impl Drop for WasmSampler {
    fn drop(&mut self) {
        self.gpu.destroy();
    }
}

/// Times every linear kernel (texture, register-tiled buffer, simple buffer) on each shape, on a device of its own:
/// the object `dit bench --kernels --json` prints, less attention.
#[wasm_bindgen(js_name = benchKernels)]
pub async fn bench_kernels(options: Option<Ts<BenchKernelsOptions>>) -> Result<Ts<KernelBench>, JsValue> {
    let opts = match &options {
        Some(o) if !o.js_value().is_undefined() && !o.js_value().is_null() => options_of(o)?,
        _ => BenchKernelsOptions::default(),
    };
    let gpu = open_gpu(opts.f16, None, GpuOptions::default()).await?;
    let shapes: Vec<[usize; 3]> =
        opts.shapes.unwrap_or_else(|| crate::bench::DIT_XL_LINEARS.iter().map(|&(m, k, n)| [m, k, n]).collect());
    let mut linear = vec![];
    for [m, k, n] in shapes {
        if m == 0 || k % 4 != 0 || n % 4 != 0 || m * k.max(n) > 1 << 26 {
            return Err(to_js(Error::input(format!(
                "shape [{m}, {k}, {n}]: M must be positive, K and N multiples of 4, and the tensors at most 256 MiB"
            ))));
        }
        linear.push(crate::bench::bench_linear(&gpu, m, k, n, opts.repeat.unwrap_or(3)).await.map_err(to_js)?);
    }
    to_ts(&KernelBench { adapter: gpu.report.clone(), linear })
}

/// One DiT forward, timed like `dit bench --preset P --random-weights --no-baseline --json`: of a paper preset with
/// random fp16 weights (nothing downloaded), or of the DiT at `model`, with the pipelines compiled.
#[wasm_bindgen(js_name = benchForward)]
pub async fn bench_forward(options: Ts<BenchForwardOptions>) -> Result<Ts<BenchForwardResult>, JsValue> {
    let opts = options_of(&options)?;
    let rest = GpuOptions { limits: opts.limits.unwrap_or_default(), ..Default::default() };
    let gpu = open_gpu(opts.f16, opts.linear, rest).await?;
    let batch = opts.batch.unwrap_or(2).max(1);
    let (name, dit) = match (&opts.preset, &opts.model) {
        (Some(preset), None) => {
            (preset.clone(), random_dit(&gpu, preset, opts.res.unwrap_or(256), Family::Dit).map_err(to_js)?)
        }
        (None, Some(model)) => {
            let fetch = loader::Fetch {
                cache: false,
                timeout_ms: crate::weights::url::DEFAULT_TIMEOUT_MS,
                on_progress: None,
                hub_endpoint: crate::hub::DEFAULT_ENDPOINT.to_string(),
            };
            let origin = loader::Origin::new(fetch);
            (model.clone(), loader::dit(&origin, &gpu, model, None).await.map_err(to_js)?.1)
        }
        _ => return Err(to_js(Error::input("give either `preset` or `model`"))),
    };
    let latent = dit.cfg.input_size;
    let warmup = opts.warmup.unwrap_or(1);
    let r = crate::bench::bench_dit_forward(&gpu, &dit, batch, latent, warmup, opts.repeat.unwrap_or(5))
        .await
        .map_err(to_js)?;
    to_ts(&BenchForwardResult {
        model: name,
        latent,
        batch,
        linear_path: gpu.report.linear_path(),
        output_finite: r.finite,
        bench: r.bench,
        pipelines: gpu.pipeline_stats(),
    })
}

/// A paper preset's DiT at `res` px with random fp16 weights (the benchmarks' model: nothing downloaded), trained as
/// `family` (a flow map: 4 output channels, a second embedder or DMF's split).
fn random_dit(gpu: &Gpu, preset: &str, res: usize, family: Family) -> crate::error::Result<Dit> {
    let cfg = DitConfig::preset(preset, res)?.trained_as(family);
    let w = GpuWeights::random(gpu, &crate::arch::dit_tensors(&cfg), 0)?;
    Dit::load(gpu, cfg, w)
}

/// One whole image (guided steps, then the VAE decode) of a paper preset with random weights, timed twice like `dit
/// bench --preset P --random-weights --sample-steps N --sampler S`.
#[wasm_bindgen(js_name = benchImage)]
pub async fn bench_image(options: Ts<BenchImageOptions>) -> Result<Ts<BenchImageResult>, JsValue> {
    let opts = options_of(&options)?;
    let gpu = open_gpu(opts.f16, opts.linear, GpuOptions::default()).await?;
    let res = opts.res.unwrap_or(256);
    let family = opts.arch.unwrap_or_default();
    let dit = random_dit(&gpu, &opts.preset, res, family).map_err(to_js)?;
    let vae_cfg = crate::arch::VaeConfig::sd();
    let w = GpuWeights::random(&gpu, &crate::arch::vae_tensors(&vae_cfg), 0).map_err(to_js)?;
    let vae = Vae::load(&gpu, vae_cfg, w).map_err(to_js)?;
    let sampler = match opts.sampler {
        Some(s) => s,
        None if family.is_flow_map() => SamplerKind::FlowMap,
        None => SamplerKind::Ddim,
    };
    let r = crate::bench::bench_image(&gpu, &dit, &vae, opts.steps.unwrap_or(50).max(1), Some(sampler))
        .await
        .map_err(to_js)?;
    to_ts(&BenchImageResult { model: opts.preset, res, generate_one_image: r })
}
