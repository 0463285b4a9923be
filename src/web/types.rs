//! What crosses the wasm boundary, as Rust types: the options JS passes in (deserialised; a value the type does not
//! allow, such as an unknown `f16` or `sampler` string, is an `invalid-input` error), and the events and results it
//! gets back (serialised). `tsify` writes each type's TypeScript declaration into the module's `.d.ts`
//! (`www/lib/pkg/dit_wasm.d.ts`), from which the package's types are made (`www/lib/src/types.ts`).

use crate::arch::Family;
use crate::bench::{ForwardBench, ImageBench, LinearBench};
use crate::diffusion::{CfgChannels, SamplerKind};
use crate::gpu::{AdapterReport, F16Mode, LimitsMode, LinearPath, LiveCounts, PipelineStats};
use serde::{Deserialize, Serialize};
use tsify::Tsify;

/// Why an operation failed: the `kind` of every error the module throws (the package's `DitErrorKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    NoWebgpu,
    AdapterLimits,
    Download,
    NotFound,
    Gated,
    Integrity,
    Aborted,
    DeviceLost,
    InvalidInput,
    Gpu,
}

/// How fp16 weights are read: with shader-f16 where offered (default), or always as packed u32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Tsify)]
#[serde(rename_all = "lowercase")]
pub enum F16Option {
    #[default]
    Auto,
    Packed,
}

impl From<F16Option> for F16Mode {
    fn from(f: F16Option) -> F16Mode {
        match f {
            F16Option::Auto => F16Mode::Auto,
            F16Option::Packed => F16Mode::Packed,
        }
    }
}

/// Whether downloaded weights (and on GPUs the kernel choices tuned at load) are kept in Cache Storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Tsify)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOption {
    #[default]
    CacheStorage,
    None,
}

/// `WasmSampler.create`'s options.
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct CreateOptions {
    /// The DiT's location: a model directory's URL, one checkpoint's URL, or a Hub repo `hf://OWNER/NAME`.
    pub model: String,
    /// The VAE decoder's location; absent for a Hub pipeline, whose `vae/` is used.
    #[serde(default)]
    #[tsify(optional)]
    pub vae: Option<String>,
    /// Where `hf://` locations resolve: `https://huggingface.co` (default), a mirror, or a server that behaves alike.
    #[serde(default)]
    #[tsify(optional)]
    pub hub_endpoint: Option<String>,
    /// Keep downloaded shards, and on GPUs the kernel choices tuned at load, in Cache Storage (default) or not.
    #[serde(default)]
    #[tsify(optional)]
    pub cache: Option<CacheOption>,
    /// Read fp16 weights with shader-f16 where offered (default) or always as packed u32.
    #[serde(default)]
    #[tsify(optional)]
    pub f16: Option<F16Option>,
    /// Where linear layers read their operands: decided per adapter (default), storage buffers, or textures.
    #[serde(default)]
    #[tsify(optional)]
    pub linear: Option<LinearPath>,
    /// Request at most this storage-binding size (bytes) from the adapter.
    #[serde(default)]
    #[tsify(optional)]
    pub max_storage_buffer_binding_size: Option<f64>,
    /// The device's limits: what the adapter offers ("adapter", the default), or none above WebGPU's defaults
    /// ("default": 128 MiB per storage binding, 256 MiB per buffer, 16 KiB of workgroup storage, 256 invocations per
    /// workgroup, 8 storage buffers per stage), which is what Safari and many Android devices give. With "default" the
    /// kernels are chosen among those that fit and large activations are kept in parts; a model that cannot fit is
    /// refused with an `AdapterLimitsError` naming the tensor and the limit, before its weights are downloaded.
    #[serde(default)]
    #[tsify(optional)]
    pub limits: Option<LimitsMode>,
    /// Milliseconds a response, or the next bytes of a body, may take before the request counts as stalled and is
    /// retried (default 30000); after the retries it is a `DownloadError` saying it timed out.
    #[serde(default)]
    #[tsify(optional)]
    pub timeout_ms: Option<f64>,
}

/// Steps as the release writes them: a count (evenly respaced) or a string such as "ddim50".
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(untagged)]
pub enum Steps {
    Count(u32),
    Text(String),
}

/// A blend of two classes in the model's label embedding (not of images): each image is conditioned on
/// `(1 - alpha) * embed(classLabels[i]) + alpha * embed(with)`, the rows of the DiT's label embedding table; guidance's
/// unconditional branch keeps the null class (`dit sample --blend B --alpha A`).
#[derive(Clone, Copy, Debug, Deserialize, Tsify)]
#[serde(deny_unknown_fields)]
pub struct ClassBlend {
    /// The class to blend with: a real class, 0..numClasses-1 (not the null class).
    pub with: u32,
    /// In [0, 1]: 0 is `classLabels[i]` alone, 1 is `with` alone. Outside that (or not finite): `invalid-input`.
    pub alpha: f32,
}

/// `WasmSampler.generate`'s options.
#[derive(Clone, Debug, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct GenerateOptions {
    /// One image per label (0..numClasses-1; numClasses is the null class, an unconditional sample).
    pub class_labels: Vec<u32>,
    /// Blend every image's class with another class: `{ with: 281, alpha: 0.5 }` conditions each image halfway between
    /// its own class and class 281. Bad values are `invalid-input` errors.
    #[serde(default)]
    #[tsify(optional)]
    pub blend: Option<ClassBlend>,
    /// Classifier-free guidance scale; the release samples with 4 (the default). 1 turns guidance off. A flow map's
    /// guidance is trained in: its default is 1; above 1 the batch doubles and all channels are guided inside
    /// `guidanceInterval`.
    #[serde(default)]
    #[tsify(optional)]
    pub cfg_scale: Option<f32>,
    /// Steps as the release writes them: 250 (evenly respaced, the default) or "ddim50"; a flow map's jumps over the
    /// uniform grid from t = 1 to 0 (default 1, or the length of `grid`).
    #[serde(default)]
    #[tsify(optional)]
    pub steps: Option<Steps>,
    /// A DiT: "ddpm" (learned-variance DDPM, the paper's; default), "ddim" (eta 0) or "dpmpp2m" (DPM-Solver++(2M)). A
    /// SiT (a flow): "euler" (the default) or "heun" (ODE over a uniform grid from t = 0 to 1, `steps` solver steps),
    /// or "euler-maruyama" (SiT's SDE), or "dopri5" (SiT's default ODE solver: adaptive steps, atol 1e-6 and rtol
    /// 1e-3; `steps` is not used, and each step event's `total` is an estimate). A flow map (MeanFlow / α-Flow, DMF):
    /// "flowmap" (the default), one network call per jump x <- x - (t - r) u(x; t, r). A sampler of another kind, or
    /// a name not listed, is an `invalid-input` error.
    #[serde(default)]
    #[tsify(optional)]
    pub sampler: Option<SamplerKind>,
    /// A flow map's grid from 1 (noise) down to 0 (data), e.g. α-Flow's two steps `[1, 0.55, 0]`; default uniform.
    #[serde(default)]
    #[tsify(optional)]
    pub grid: Option<Vec<f64>>,
    /// α-Flow's consistency steps: jump to t = 0, then re-noise to the next time with fresh noise. Default false.
    #[serde(default)]
    #[tsify(optional)]
    pub consistency: Option<bool>,
    /// A flow map's time shift s, t' = s t / (1 + (s - 1) t) (DMF's 512 px model samples with 1.5). Default 1.
    #[serde(default)]
    #[tsify(optional)]
    pub shift: Option<f64>,
    /// Where a flow map's guidance above 1 applies, `[lo, hi]` in t; default the model's trained interval.
    #[serde(default)]
    #[tsify(optional)]
    pub guidance_interval: Option<[f64; 2]>,
    /// Guidance on eps channels 0..2 as the release does ("official", default) or on all of them.
    #[serde(default)]
    #[tsify(optional)]
    pub cfg_channels: Option<CfgChannels>,
    /// Noise seed (a whole number); the same seed gives the same image here and from the native `dit sample`.
    #[serde(default)]
    #[tsify(optional)]
    pub seed: Option<f64>,
    /// Decode a preview every N steps (0: none).
    #[serde(default)]
    #[tsify(optional)]
    pub preview_every: Option<usize>,
}

/// What a loaded sampler runs on and what it runs.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct SamplerInfo {
    pub adapter: AdapterReport,
    pub model: ModelInfo,
    /// The pipelines compiled so far: right after loading, those the load compiled.
    pub pipelines: PipelineStats,
}

/// The loaded DiT.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The network's family: "dit" (a diffusion: ddpm, ddim, dpmpp2m), "sit" (a flow: euler, heun, euler-maruyama,
    /// dopri5), or a flow map, "meanflow" (MeanFlow / α-Flow) or "dmf" (Decoupled MeanFlow): sampler "flowmap", one
    /// to a few steps, guidance trained in.
    pub arch: Family,
    pub num_classes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    pub latent_size: u32,
    pub image_size: u32,
    pub parameters: f64,
    pub bytes: f64,
}

/// Images as the page shows them.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct Images {
    pub width: u32,
    pub height: u32,
    /// One RGBA image per class label (width * height * 4 bytes).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Uint8ClampedArray[]")]
    pub images: js_sys::Array,
}

/// One sampler step done.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct StepEvent {
    pub step: u32,
    pub total: u32,
    /// The training timestep just evaluated (0..999).
    pub timestep: u32,
    /// Seconds since sampling started.
    pub elapsed: f64,
    /// The decoded current estimate, every `previewEvery` steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Images>,
}

/// What `generate` resolves to: the images, the seed, and the GPU memory alive once the generation is done.
#[derive(Clone, Debug, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResult {
    #[serde(flatten)]
    pub images: Images,
    pub seed: f64,
    /// The GPU buffers and textures alive on the sampler's device once this generation is done.
    pub gpu_memory: LiveCounts,
}

/// `benchKernels`'s options.
#[derive(Clone, Debug, Default, Deserialize, Tsify)]
pub struct BenchKernelsOptions {
    /// `[M, K, N]` shapes of `y = x W^T + b`; default DiT-XL/2's four linear layers at 256 px, batch 2.
    #[serde(default)]
    #[tsify(optional)]
    pub shapes: Option<Vec<[usize; 3]>>,
    /// Timed runs per kernel and shape (the median is reported); default 3.
    #[serde(default)]
    #[tsify(optional)]
    pub repeat: Option<usize>,
    #[serde(default)]
    #[tsify(optional)]
    pub f16: Option<F16Option>,
}

/// What `benchKernels` resolves to: the JSON of `dit bench --kernels --json`.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct KernelBench {
    pub adapter: AdapterReport,
    pub linear: Vec<LinearBench>,
}

/// `benchForward`'s options.
#[derive(Clone, Debug, Deserialize, Tsify)]
pub struct BenchForwardOptions {
    /// A paper preset: "S/2", "B/4", "XL/2", ... with random weights; give this or `model`.
    #[serde(default)]
    #[tsify(optional)]
    pub preset: Option<String>,
    /// A DiT's location (as `create`'s `model`), read without Cache Storage; give this or `preset`.
    #[serde(default)]
    #[tsify(optional)]
    pub model: Option<String>,
    /// Image resolution in pixels (latent = res / 8); default 256.
    #[serde(default)]
    #[tsify(optional)]
    pub res: Option<usize>,
    /// Batch of the forward; default 2 (one guided step).
    #[serde(default)]
    #[tsify(optional)]
    pub batch: Option<usize>,
    /// Timed runs (the median is reported); default 5.
    #[serde(default)]
    #[tsify(optional)]
    pub repeat: Option<usize>,
    /// Untimed forwards before the timed ones (compiling every pipeline); default 1.
    #[serde(default)]
    #[tsify(optional)]
    pub warmup: Option<usize>,
    #[serde(default)]
    #[tsify(optional)]
    pub f16: Option<F16Option>,
    #[serde(default)]
    #[tsify(optional)]
    pub linear: Option<LinearPath>,
    /// The device's limits, as `createSampler`'s: what the adapter offers (default), or WebGPU's defaults.
    #[serde(default)]
    #[tsify(optional)]
    pub limits: Option<LimitsMode>,
}

/// What `benchForward` resolves to: the JSON of `dit bench --preset P --random-weights --no-baseline --json`.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct BenchForwardResult {
    /// The preset or model location asked for.
    pub model: String,
    /// Latent side (res / 8).
    pub latent: usize,
    pub batch: usize,
    /// Where linear layers read their operands: "buffers", or "textures (...)" with how.
    pub linear_path: String,
    /// Whether every value of the forward's output was finite.
    pub output_finite: bool,
    pub bench: ForwardBench,
    pub pipelines: PipelineStats,
}

/// `benchImage`'s options.
#[derive(Clone, Debug, Deserialize, Tsify)]
pub struct BenchImageOptions {
    /// A paper preset with random weights (and a random SD VAE): "S/2", "XL/2", ...
    pub preset: String,
    /// What the network is trained as: "dit" (default), "sit", "meanflow" or "dmf" (a flow map: guidance 1).
    #[serde(default)]
    #[tsify(optional)]
    pub arch: Option<Family>,
    /// Image resolution in pixels; default 256.
    #[serde(default)]
    #[tsify(optional)]
    pub res: Option<usize>,
    /// Sampler steps; default 50.
    #[serde(default)]
    #[tsify(optional)]
    pub steps: Option<usize>,
    /// Default DDIM (a flow map: "flowmap").
    #[serde(default)]
    #[tsify(optional)]
    pub sampler: Option<SamplerKind>,
    #[serde(default)]
    #[tsify(optional)]
    pub f16: Option<F16Option>,
    #[serde(default)]
    #[tsify(optional)]
    pub linear: Option<LinearPath>,
}

/// What `benchImage` resolves to: the JSON of `dit bench --preset P --random-weights --sample-steps N`'s image part.
#[derive(Clone, Debug, Serialize, Tsify)]
pub struct BenchImageResult {
    pub model: String,
    pub res: usize,
    pub generate_one_image: ImageBench,
}

/// The Cache Storage caches the module writes (the package's `CACHE_NAMES`), declared to TypeScript from their
/// constants.
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const CACHE_NAMES: &str = const_format::concatcp!(
    "/** The Cache Storage caches the wasm module writes: weights, and the kernel choices tuned per GPU. */\n",
    "export interface CacheNames {\n    weights: \"",
    crate::weights::url::CACHE_NAME,
    "\";\n    tuning: \"",
    crate::tune::cache::CACHE_NAME,
    "\";\n}\n"
);
