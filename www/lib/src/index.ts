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
import type {
  BenchForwardOptions,
  BenchForwardResult,
  BenchKernelsOptions,
  CreateSamplerOptions,
  GenerateOptions,
  GenerateResult,
  KernelBench,
  LoadProgress,
  SamplerInfo,
  StepEvent,
} from "./types.js";

export * from "./errors.js";
export type {
  AdapterInfo,
  BenchForwardOptions,
  BenchForwardResult,
  BenchKernelsOptions,
  CreateSamplerOptions,
  ForwardBench,
  GenerateOptions,
  GenerateResult,
  Images,
  KernelBench,
  KernelTiming,
  LinearBench,
  LoadProgress,
  OpTiming,
  SamplerInfo,
  StepEvent,
} from "./types.js";

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

/**
 * Times each linear kernel (texture, register-tiled and simple storage-buffer kernels) on DiT-XL/2's layer shapes,
 * on a device of its own in a worker: the browser side of `dit bench --kernels`.
 */
export async function benchKernels(options: BenchKernelsOptions = {}): Promise<KernelBench> {
  return (await runBench("benchKernels", options)) as KernelBench;
}

/**
 * One DiT forward of a paper preset with random weights (nothing is downloaded), timed on a device of its own in a
 * worker: the browser side of `dit bench --preset P --random-weights --json`. `bench.ms_per_forward` is the median.
 */
export async function benchForward(options: BenchForwardOptions): Promise<BenchForwardResult> {
  return (await runBench("benchForward", options)) as BenchForwardResult;
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
