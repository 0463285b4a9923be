/**
 * The package's options, events and results. The wasm module's own types are re-exported from its declarations
 * (pkg/dit_wasm.d.ts, written from the Rust types by tsify); those the package widens or documents for its users are
 * written here, and tests/scripts/contract.test.mjs fails when one differs from its declaration.
 */

// The types that are the wasm module's own, as it declares them from their Rust definitions (tsify): the package
// adds nothing to them.
export type {
  BenchImageResult,
  ClassBlend,
  ImageBench,
  Images,
  KernelTiming,
  LinearBench,
  OpTiming,
  PipelineStats,
  StepEvent,
} from "../pkg/dit_wasm.js";
import type {
  ClassBlend,
  Images,
  LinearBench,
  LiveCounts,
  OpTiming,
  PipelineStats,
  StepEvent,
} from "../pkg/dit_wasm.js";

/** The GPU buffers and textures alive on a sampler's device. Rust: `LiveCounts` (src/gpu). */
export type GpuMemory = LiveCounts;

/** Loading progress: bytes while downloading, then the phases. */
export interface LoadProgress {
  phase: "adapter" | "download" | "compile" | "ready";
  /** The file being downloaded. */
  file?: string;
  /** Bytes of weights obtained so far and in all (the current model). */
  loaded?: number;
  total?: number;
  /** Whether the file came from Cache Storage. */
  cached?: boolean;
  /**
   * Something the page should show: for example that the browser's storage cannot hold the model, so it loads
   * uncached and downloads again on the next visit.
   */
  notice?: string;
  /**
   * Set on the events of a recovery: the GPU device was lost (a driver reset, the browser's GPU process restarting),
   * and the package is opening a new one and reloading the model from Cache Storage by itself (see `Sampler`).
   */
  recovering?: boolean;
}

export interface CreateSamplerOptions {
  /**
   * Base URL of a DiT model directory (as written by `dit convert`), absolute or relative to the page; or the URL of
   * one `.safetensors` checkpoint (release names or diffusers layout; f32, bf16 or f16) on a server that honours HTTP
   * Range requests, read in ranges with no conversion step. Its fragment may give `#sha256=<hex of the whole file>`
   * (then every byte is read and checked), `&heads=N` (a DiT that is not a paper preset) and `&input_size=S` (its
   * latent side, when the file has no `pos_embed`). Or a Hub repo, `hf://OWNER/NAME[@REVISION][/SUBFOLDER]` (for
   * example `hf://facebook/DiT-XL-2-256`): a diffusers pipeline (its `transformer/`, and its `vae/` unless `vae` is
   * given) or one component, read in place by HTTP Range requests from `hubEndpoint`; its fp16 weights are kept in
   * Cache Storage per endpoint, repo, commit and file, so a second visit downloads nothing and works offline.
   */
  model: string | URL;
  /**
   * Base URL of a VAE-decoder model directory, one `.safetensors` file (its `config.json` beside it is read), or an
   * `hf://` repo. May be left out when `model` is a Hub pipeline: its `vae/` is used.
   */
  vae?: string | URL;
  /** Where `hf://` locations resolve: `https://huggingface.co` (default), a mirror, or a server that behaves alike. */
  hubEndpoint?: string;
  onProgress?: (event: LoadProgress) => void;
  /** Keep downloaded shards, and on GPUs the kernel choices tuned at load, in Cache Storage (default) or not. */
  cache?: "cache-storage" | "none";
  /** Read fp16 weights with shader-f16 where offered (default) or always as packed u32. */
  f16?: "auto" | "packed";
  /** Where linear layers read their operands: decided per adapter (default), storage buffers, or textures. */
  linear?: "auto" | "buffers" | "textures";
  /** Request at most this storage-binding size (bytes) from the adapter. */
  maxStorageBufferBindingSize?: number;
  /**
   * The device's limits: what the adapter offers ("adapter", the default), or none above WebGPU's defaults
   * ("default": 128 MiB per storage binding, 256 MiB per buffer, 16 KiB of workgroup storage, 256 invocations per
   * workgroup, 8 storage buffers per stage), which is what Safari and many Android devices give. With "default" the
   * kernels are chosen among those that fit and large activations are kept in parts; a model that cannot fit is
   * refused with an `AdapterLimitsError` naming the tensor and the limit, before its weights are downloaded.
   */
  limits?: "adapter" | "default";
  /**
   * Milliseconds a response, or the next bytes of a body, may take before the request counts as stalled and is retried
   * (default 30000); after the retries it is a `DownloadError` saying it timed out.
   */
  timeoutMs?: number;
  /** A worker running this package's worker script, for bundlers that need it created in the app. */
  worker?: Worker;
  /**
   * Stops the load: the worker is ended (its GPU device with it) and the promise rejects with an `AbortError`. A
   * shard being written to Cache Storage is either kept whole or not at all.
   */
  signal?: AbortSignal;
}

/** What the adapter is and what it offers, as the device was opened. Rust: `AdapterReport` (src/gpu). */
export interface AdapterInfo {
  name: string;
  /** wgpu's backend: "BrowserWebGpu" in a browser. */
  backend: string;
  /** wgpu's device type: "DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Cpu" or "Other". */
  device_type: string;
  driver: string;
  shader_f16: boolean;
  /** How fp16 weights are read: "shader-f16" or "packed-u32". */
  f16_weights_path: string;
  timestamp_query: boolean;
  max_storage_buffer_binding_size: number;
  max_buffer_size: number;
  max_compute_invocations_per_workgroup: number;
  max_compute_workgroup_storage_size: number;
  max_texture_dimension_2d: number;
  max_storage_buffers_per_shader_stage: number;
  /** Which limits were asked for: what the adapter offers, or WebGPU's defaults (`limits: "default"`). */
  limits: "adapter" | "default";
  /** How texture-path kernels read their textures. */
  texture_reads: "sampled" | "storage";
  /** Whether subgroup operations are enabled. */
  subgroups: boolean;
  /** Whether linear layers read weights and inputs through textures. */
  texture_linears: boolean;
  /** Fields a later version may add. */
  [key: string]: unknown;
}

export interface SamplerInfo {
  adapter: AdapterInfo;
  model: {
    preset?: string;
    /**
     * The network's family: "dit" (a diffusion: ddpm, ddim, dpmpp2m), "sit" (a flow: euler, heun, euler-maruyama,
     * dopri5), or a flow map, "meanflow" (MeanFlow / α-Flow) or "dmf" (Decoupled MeanFlow): sampler "flowmap", one to a
     * few steps, guidance trained in.
     */
    arch: "dit" | "sit" | "meanflow" | "dmf";
    numClasses: number;
    classNames?: string[];
    latentSize: number;
    imageSize: number;
    parameters: number;
    bytes: number;
  };
  /** The pipelines compiled so far: right after loading, those the load compiled. */
  pipelines: PipelineStats;
}

export interface GenerateOptions {
  /** One image per label (0..numClasses-1; numClasses is the null class, an unconditional sample). */
  classLabels: number[];
  /**
   * Blend every image's class with another class: `{ with: 281, alpha: 0.5 }` conditions each image halfway between
   * its own class and class 281. Bad values are `invalid-input` errors.
   */
  blend?: ClassBlend;
  /**
   * Classifier-free guidance scale; the release samples with 4 (the default). 1 turns guidance off. A flow map's
   * guidance is trained in: its default is 1; above 1 the batch doubles and all channels are guided inside
   * `guidanceInterval`.
   */
  cfgScale?: number;
  /**
   * Steps as the release writes them: 250 (evenly respaced, the default) or "ddim50"; a flow map's jumps over the
   * uniform grid from t = 1 to 0 (default 1, or the length of `grid`).
   */
  steps?: number | string;
  /**
   * A DiT: "ddpm" (learned-variance DDPM, the paper's; default), "ddim" (eta 0) or "dpmpp2m" (DPM-Solver++(2M)). A SiT
   * (a flow): "euler" (the default) or "heun" (ODE over a uniform grid from t = 0 to 1, `steps` solver steps), or
   * "euler-maruyama" (SiT's SDE), or "dopri5" (SiT's default ODE solver: adaptive steps, atol 1e-6 and rtol 1e-3;
   * `steps` is not used, and each step event's `total` is an estimate). A flow map (MeanFlow / α-Flow, DMF):
   * "flowmap" (the default), one network call per jump x <- x - (t - r) u(x; t, r). A sampler of another kind is an
   * `invalid-input` error.
   */
  sampler?: "ddpm" | "ddim" | "dpmpp2m" | "euler" | "heun" | "euler-maruyama" | "dopri5" | "flowmap";
  /** A flow map's grid from 1 (noise) down to 0 (data), e.g. α-Flow's two steps `[1, 0.55, 0]`; default uniform. */
  grid?: number[];
  /** α-Flow's consistency steps: jump to t = 0, then re-noise to the next time with fresh noise. Default false. */
  consistency?: boolean;
  /** A flow map's time shift s, t' = s t / (1 + (s - 1) t) (DMF's 512 px model samples with 1.5). Default 1. */
  shift?: number;
  /** Where a flow map's guidance above 1 applies, `[lo, hi]` in t; default the model's trained interval. */
  guidanceInterval?: [number, number];
  /** Guidance on eps channels 0..2 as the release does ("official", default) or on all of them. */
  cfgChannels?: "official" | "all";
  /** Noise seed (a whole number); the same seed gives the same image here and from the native `dit sample`. */
  seed?: number;
  signal?: AbortSignal;
  onStep?: (event: StepEvent) => void;
  /** Decode a preview every N steps (0: none). */
  previewEvery?: number;
}

export interface GenerateResult extends Images {
  seed: number;
  /** The GPU buffers and textures alive on the sampler's device once this generation is done. */
  gpuMemory: GpuMemory;
}

export interface BenchKernelsOptions {
  /** `[M, K, N]` shapes of `y = x W^T + b`; default DiT-XL/2's four linear layers at 256 px, batch 2. */
  shapes?: [number, number, number][];
  /** Timed runs per kernel and shape (the median is reported); default 3. */
  repeat?: number;
  f16?: "auto" | "packed";
  /** A worker running dist/worker.js, for bundlers that need to create it themselves. */
  worker?: Worker;
}

/** What `benchKernels` resolves to: the JSON of `dit bench --kernels --json`. */
export interface KernelBench {
  adapter: AdapterInfo;
  linear: LinearBench[];
}

export interface BenchForwardOptions {
  /** A paper preset: "S/2", "B/4", "XL/2", ... with random weights; give this or `model`. */
  preset?: string;
  /** A DiT's location (as `create`'s `model`), read without Cache Storage; give this or `preset`. */
  model?: string;
  /** Image resolution in pixels (latent = res / 8); default 256. */
  res?: number;
  /** Batch of the forward; default 2 (one guided step). */
  batch?: number;
  /** Timed runs (the median is reported); default 5. */
  repeat?: number;
  /** Untimed forwards before the timed ones (compiling every pipeline); default 1. */
  warmup?: number;
  f16?: "auto" | "packed";
  linear?: "auto" | "buffers" | "textures";
  /** The device's limits, as `createSampler`'s: what the adapter offers (default), or WebGPU's defaults. */
  limits?: "adapter" | "default";
  worker?: Worker;
}

export interface BenchImageOptions {
  /** A paper preset with random weights (and a random SD VAE): "S/2", "XL/2", ... */
  preset: string;
  /** What the network is trained as: "dit" (default), "sit", "meanflow" or "dmf" (a flow map: guidance 1). */
  arch?: "dit" | "sit" | "meanflow" | "dmf";
  /** Image resolution in pixels; default 256. */
  res?: number;
  /** Sampler steps; default 50. */
  steps?: number;
  /** Default DDIM (a flow map: "flowmap"). */
  sampler?: GenerateOptions["sampler"];
  f16?: "auto" | "packed";
  linear?: "auto" | "buffers" | "textures";
  worker?: Worker;
}

/** A timed forward. Rust: `ForwardBench` (src/bench). */
export interface ForwardBench {
  adapter: AdapterInfo;
  /** The median of `ms_runs`: wall time of submit + wait. */
  ms_per_forward: number;
  ms_runs: number[];
  /** 2 x multiply-adds of the forward. */
  gflop_per_forward: number;
  gflops_per_s: number;
  dispatches_per_forward: number;
  /** GPU time per op family, summed over one forward. */
  ops: Record<string, OpTiming>;
  /** How `ops` was timed: "gpu-timestamps", or "cpu-per-dispatch" (with the reason when timestamps were offered). */
  timer: string;
}

/**
 * What `benchForward` resolves to: the JSON of `dit bench --preset P --random-weights --no-baseline --json`. A type
 * rather than an interface so that it stays assignable to `Record<string, unknown>`, the type it had before.
 */
export type BenchForwardResult = {
  /** The preset or model location asked for. */
  model: string;
  /** Latent side (res / 8). */
  latent: number;
  batch: number;
  /** Where linear layers read their operands: "buffers", or "textures (...)" with how. */
  linear_path: string;
  /** Whether every value of the forward's output was finite. */
  output_finite: boolean;
  bench: ForwardBench;
  pipelines: PipelineStats;
};

