/**
 * dit-wasm: class-conditional image generation with DiT (Peebles & Xie) and the SD-VAE decoder on WebGPU.
 *
 * ```ts
 * import { createSampler } from "dit-wasm";
 * const s = await createSampler({ model: "/models/demo/dit", vae: "/models/demo/vae", onProgress: console.log });
 * const r = await s.generate({ classLabels: [207], cfgScale: 4, steps: 50, sampler: "ddim", seed: 42 });
 * s.dispose();
 * ```
 * The model runs in a dedicated Worker; the page never blocks. Weights are fetched shard by shard, verified (sha256)
 * and kept in Cache Storage for the next visit.
 */
import { AbortError, DitError, errorFromKind, NoWebGPUError } from "./errors.js";
import type { FromWorker, ToWorker, WithoutId } from "./protocol.js";

export * from "./errors.js";

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
}

export interface CreateSamplerOptions {
  /**
   * Base URL of a DiT model directory (as written by `dit convert`), absolute or relative to the page; or the URL of one
   * `.safetensors` checkpoint (release names or diffusers layout; f32, bf16 or f16) on a server that honours HTTP Range
   * requests, read in ranges with no conversion step. Its fragment may give `#sha256=<hex of the whole file>` (then
   * every byte is read and checked), `&heads=N` (a DiT that is not a paper preset) and `&input_size=S` (its latent side,
   * when the file has no `pos_embed`).
   */
  model: string | URL;
  /** Base URL of a VAE-decoder model directory, or one `.safetensors` file (its `config.json` beside it is read). */
  vae: string | URL;
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
   * Milliseconds a response, or the next bytes of a body, may take before the request counts as stalled and is retried
   * (default 30000); after the retries it is a `DownloadError` saying it timed out.
   */
  timeoutMs?: number;
  /** A worker running this package's worker script, for bundlers that need it created in the app. */
  worker?: Worker;
}

export interface AdapterInfo {
  name: string;
  backend: string;
  shader_f16: boolean;
  f16_weights_path: string;
  texture_linears: boolean;
  max_storage_buffer_binding_size: number;
  [key: string]: unknown;
}

export interface SamplerInfo {
  adapter: AdapterInfo;
  model: {
    preset?: string;
    numClasses: number;
    classNames?: string[];
    latentSize: number;
    imageSize: number;
    parameters: number;
    bytes: number;
  };
}

export interface Images {
  width: number;
  height: number;
  /** One RGBA image per class label (width * height * 4 bytes). */
  images: Uint8ClampedArray[];
}

export interface StepEvent {
  step: number;
  total: number;
  /** The training timestep just evaluated (0..999). */
  timestep: number;
  /** Seconds since sampling started. */
  elapsed: number;
  /** The decoded current estimate, every `previewEvery` steps. */
  preview?: Images;
}

export interface GenerateOptions {
  /** One image per label (0..numClasses-1; numClasses is the null class, an unconditional sample). */
  classLabels: number[];
  /** Classifier-free guidance scale; the release samples with 4. 1 turns guidance off. */
  cfgScale?: number;
  /** Steps as the release writes them: 250 (evenly respaced) or "ddim50". Default 250. */
  steps?: number | string;
  /** "ddpm" (learned-variance DDPM, the paper's; default), "ddim" (eta 0) or "dpmpp2m" (DPM-Solver++(2M)). */
  sampler?: "ddpm" | "ddim" | "dpmpp2m";
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
}

export interface Sampler {
  readonly info: SamplerInfo;
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /** Ends the worker and frees the GPU memory. */
  dispose(): void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  onEvent?: (type: "progress" | "step", event: unknown) => void;
}

class WorkerSampler implements Sampler {
  info!: SamplerInfo;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private disposed = false;

  constructor(private worker: Worker) {
    worker.onmessage = (ev: MessageEvent<FromWorker>) => this.onMessage(ev.data);
    worker.onerror = (ev: ErrorEvent) => {
      const why = ev.message || "its script did not load; check that the server serves dit-wasm's dist/worker.js";
      const err = new DitError("gpu", `the dit-wasm worker failed: ${why}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  private onMessage(msg: FromWorker) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === "progress" || msg.type === "step") {
      p.onEvent?.(msg.type, msg.event);
    } else {
      this.pending.delete(msg.id);
      if (msg.type === "result") p.resolve(msg.value);
      else p.reject(errorFromKind(msg.kind, msg.message));
    }
  }

  call(msg: WithoutId<ToWorker>, onEvent?: Pending["onEvent"]): { id: number; done: Promise<unknown> } {
    if (this.disposed) throw new DitError("invalid-input", "this sampler was disposed; create a new one");
    const id = this.nextId++;
    const done = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, onEvent }));
    this.worker.postMessage({ ...msg, id } as ToWorker);
    return { id, done };
  }

  async generate(options: GenerateOptions): Promise<GenerateResult> {
    const { signal, onStep, ...rest } = options;
    if (signal?.aborted) throw new AbortError();
    const { id, done } = this.call({ type: "generate", options: rest as Record<string, unknown> }, (type, event) => {
      if (type === "step") onStep?.(event as StepEvent);
    });
    const onAbort = () => this.worker.postMessage({ type: "abort", id } satisfies ToWorker);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return (await done) as GenerateResult;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.worker.terminate();
    const err = new DitError("invalid-input", "the sampler was disposed");
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

function absolute(u: string | URL): string {
  const base = typeof document !== "undefined" ? document.baseURI : (globalThis as { location?: Location }).location?.href;
  return new URL(u.toString(), base).href;
}

/** Starts a worker, opens the GPU and loads the model and the VAE (downloading what Cache Storage lacks). */
export async function createSampler(options: CreateSamplerOptions): Promise<Sampler> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !(navigator as { gpu?: unknown }).gpu) {
    throw new NoWebGPUError(
      "this browser has no WebGPU: use a recent Chrome, Edge or Safari (or enable WebGPU) on an https or localhost page",
    );
  }
  const worker = options.worker ?? new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  const sampler = new WorkerSampler(worker);
  const { onProgress, worker: _w, ...rest } = options;
  const opts = { ...rest, model: absolute(options.model), vae: absolute(options.vae) };
  try {
    const { done } = sampler.call({ type: "create", options: opts }, (type, event) => {
      if (type === "progress") onProgress?.(event as LoadProgress);
    });
    sampler.info = (await done) as SamplerInfo;
    return sampler;
  } catch (e) {
    sampler.dispose();
    throw e;
  }
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

export interface KernelTiming {
  kernel: string;
  ms: number;
  gflops_per_s: number;
  /** Speed relative to the register-tiled storage-buffer kernel in the same run. */
  vs_register_tiled: number;
}

export interface KernelBench {
  adapter: Record<string, unknown>;
  linear: { m: number; k: number; n: number; kernels: KernelTiming[] }[];
}

/**
 * Times each linear kernel (texture, register-tiled and simple storage-buffer kernels) on DiT-XL/2's layer shapes,
 * on a device of its own in a worker: the browser side of `dit bench --kernels`.
 */
export async function benchKernels(options: BenchKernelsOptions = {}): Promise<KernelBench> {
  return (await runBench("benchKernels", options)) as KernelBench;
}

export interface BenchForwardOptions {
  /** A paper preset: "S/2", "B/4", "XL/2", ... */
  preset: string;
  /** Image resolution in pixels (latent = res / 8); default 256. */
  res?: number;
  /** Batch of the forward; default 2 (one guided step). */
  batch?: number;
  /** Timed runs (the median is reported); default 5. */
  repeat?: number;
  f16?: "auto" | "packed";
  linear?: "auto" | "buffers" | "textures";
  worker?: Worker;
}

/**
 * One DiT forward of a paper preset with random weights (nothing is downloaded), timed on a device of its own in a
 * worker: the browser side of `dit bench --preset P --random-weights --json`. `bench.ms_per_forward` is the median.
 */
export async function benchForward(options: BenchForwardOptions): Promise<Record<string, unknown>> {
  return (await runBench("benchForward", options)) as Record<string, unknown>;
}

async function runBench(type: "benchKernels" | "benchForward", options: { worker?: Worker }): Promise<unknown> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !(navigator as { gpu?: unknown }).gpu) {
    throw new NoWebGPUError("this browser has no WebGPU: use a recent Chrome, Edge or Safari (or enable WebGPU)");
  }
  const { worker: given, ...rest } = options;
  const worker = given ?? new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  const runner = new WorkerSampler(worker);
  try {
    const { done } = runner.call({ type, options: rest as Record<string, unknown> });
    return await done;
  } finally {
    runner.dispose();
  }
}

/** Removes every cached weight shard, and the kernel choices kept per GPU, from Cache Storage. */
export async function clearCache(): Promise<boolean> {
  const [weights] = await Promise.all([caches.delete("dit-wasm-weights-v1"), caches.delete("dit-wasm-tuning-v1")]);
  return weights;
}
