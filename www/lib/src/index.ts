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
 * and kept in Cache Storage for the next visit. `model` may also be a Hub repo:
 * `createSampler({ model: "hf://facebook/DiT-XL-2-256" })` reads the pipeline's transformer and VAE in place.
 */
import { AbortError, DitError, errorFromKind, NoWebGPUError } from "./errors.js";
import { isResultOf } from "./protocol.js";
import type { FromWorker, Request, RequestKind, RequestParams, RequestResults, ToWorker } from "./protocol.js";
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
export type * from "./types.js";

/**
 * The Cache Storage caches the wasm module writes: weight shards, and the kernel choices tuned per GPU. The crate names
 * them in Rust constants (`CACHE_NAME` in src/weights/url/mod.rs and src/tune/cache.rs);
 * tests/scripts/contract.test.mjs checks that the two agree.
 */
export const CACHE_NAMES = { weights: "dit-wasm-weights-v1", tuning: "dit-wasm-tuning-v1" } as const;

export interface Sampler {
  readonly info: SamplerInfo;
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /** Ends the worker and frees the GPU memory. */
  dispose(): void;
}

/** What the page does with the events of a request. */
interface EventHandlers {
  onProgress?: (event: LoadProgress) => void;
  onStep?: (event: StepEvent) => void;
}

/** A request in flight: its event handlers, and what settles its promise from the worker's answer. */
interface Pending extends EventHandlers {
  settle: (answer: Extract<FromWorker, { type: "result" | "error" }>) => void;
  fail: (error: DitError) => void;
}

/** The page's end of the protocol (protocol.ts): one worker, requests told apart by id. */
class WorkerClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private disposed = false;

  constructor(private worker: Worker) {
    worker.onmessage = (ev: MessageEvent<FromWorker>) => this.onMessage(ev.data);
    worker.onerror = (ev: ErrorEvent) => {
      const why = ev.message || "its script did not load; check that the server serves dit-wasm's dist/worker.js";
      this.failAll(new DitError("gpu", `the dit-wasm worker failed: ${why}`));
    };
  }

  private onMessage(msg: FromWorker) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === "progress") p.onProgress?.(msg.event);
    else if (msg.type === "step") p.onStep?.(msg.event);
    else {
      this.pending.delete(msg.id);
      p.settle(msg);
    }
  }

  private failAll(error: DitError) {
    for (const p of this.pending.values()) p.fail(error);
    this.pending.clear();
  }

  /** Sends a request of kind `type`; `done` resolves to that kind's result. */
  call<K extends RequestKind>(
    type: K,
    params: RequestParams[K],
    handlers: EventHandlers = {},
  ): { id: number; done: Promise<RequestResults[K]> } {
    if (this.disposed) throw new DitError("invalid-input", "this sampler was disposed; create a new one");
    const id = this.nextId++;
    const done = new Promise<RequestResults[K]>((resolve, reject) => {
      const settle: Pending["settle"] = (answer) => {
        if (answer.type === "error") reject(errorFromKind(answer.kind, answer.message));
        else if (isResultOf(answer, type)) resolve(answer.value);
        else reject(new DitError("gpu", `the dit-wasm worker answered a ${type} request as ${answer.request}`));
      };
      this.pending.set(id, { ...handlers, settle, fail: reject });
    });
    const request: Request<K> = { type, id, params };
    this.worker.postMessage(request);
    return { id, done };
  }

  /** Asks the worker to stop request `id` at its next step. */
  abort(id: number) {
    this.worker.postMessage({ type: "abort", id } satisfies ToWorker);
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.worker.terminate();
    this.failAll(new DitError("invalid-input", "the sampler was disposed"));
  }
}

class WorkerSampler implements Sampler {
  constructor(
    private client: WorkerClient,
    readonly info: SamplerInfo,
  ) {}

  async generate(options: GenerateOptions): Promise<GenerateResult> {
    const { signal, onStep, ...params } = options;
    if (signal?.aborted) throw new AbortError();
    const { id, done } = this.client.call("generate", params, { onStep });
    const onAbort = () => this.client.abort(id);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await done;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  dispose() {
    this.client.dispose();
  }
}

/** A location made absolute against the page (an `hf://` location is left as it is). */
function absolute(u: string | URL): string {
  if (u.toString().startsWith("hf://")) return u.toString();
  const base = typeof document !== "undefined" ? document.baseURI : globalThis.location?.href;
  return new URL(u.toString(), base).href;
}

/**
 * Asks the browser to keep this site's storage (the cached weights) under storage pressure. Only a page can ask
 * (`navigator.storage.persist` is not offered to workers); the browser may say no, which changes nothing else.
 */
async function askPersistentStorage(): Promise<void> {
  try {
    if (typeof navigator !== "undefined" && navigator.storage?.persist && !(await navigator.storage.persisted())) {
      await navigator.storage.persist();
    }
  } catch {
    // Not offered here (an insecure context, an embedded frame): the weights are cached as best effort.
  }
}

function hasWebGPU(): boolean {
  return typeof navigator !== "undefined" && "gpu" in navigator && Boolean(navigator.gpu);
}

/**
 * A worker running this package's worker script: the caller's, or one started here. A page may construct a Worker
 * only from a script of its own origin, so when this package is served from another origin (a CDN), the worker is
 * started from a same-origin blob whose one line imports the package's worker by its absolute URL (a module import
 * may cross origins under CORS); the worker then loads the wasm relative to its own module URL, so from the package.
 * Bundlers see the plain `new Worker(new URL(...))` and bundle the worker themselves.
 */
function startWorker(given: Worker | undefined): WorkerClient {
  if (given) return new WorkerClient(given);
  const page = globalThis.location?.origin;
  if (page === undefined || new URL(import.meta.url).origin === page) {
    return new WorkerClient(new Worker(new URL("./worker.js", import.meta.url), { type: "module" }));
  }
  return new WorkerClient(crossOriginWorker());
}

/** A module worker from a same-origin blob that imports this package's `worker.js` (see `startWorker`). */
function crossOriginWorker(): Worker {
  // Built from a variable so that bundlers do not take it for an asset to copy.
  const script = "./worker.js";
  const source = `import ${JSON.stringify(new URL(script, import.meta.url).href)};\n`;
  const blob = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(blob, { type: "module" });
  // Once the worker has read the script (it answers, or fails), the blob is no longer needed.
  const revoke = () => URL.revokeObjectURL(blob);
  worker.addEventListener("message", revoke, { once: true });
  worker.addEventListener("error", revoke, { once: true });
  return worker;
}

/** Starts a worker, opens the GPU and loads the model and the VAE (downloading what Cache Storage lacks). */
export async function createSampler(options: CreateSamplerOptions): Promise<Sampler> {
  if (!hasWebGPU()) {
    throw new NoWebGPUError(
      "this browser has no WebGPU: use a recent Chrome, Edge or Safari (or enable WebGPU) on an https or " +
        "localhost page",
    );
  }
  const { onProgress, worker, model, vae, ...rest } = options;
  if (rest.cache !== "none" && model.toString().startsWith("hf://")) await askPersistentStorage();
  const client = startWorker(worker);
  try {
    const where = { model: absolute(model), ...(vae ? { vae: absolute(vae) } : {}) };
    const { done } = client.call("create", { ...rest, ...where }, { onProgress });
    return new WorkerSampler(client, await done);
  } catch (e) {
    client.dispose();
    throw e;
  }
}

/**
 * Times each linear kernel (texture, register-tiled and simple storage-buffer kernels) on DiT-XL/2's layer shapes,
 * on a device of its own in a worker: the browser side of `dit bench --kernels`.
 */
export async function benchKernels(options: BenchKernelsOptions = {}): Promise<KernelBench> {
  const { worker, ...params } = options;
  return runBench(worker, "benchKernels", params);
}

/**
 * One DiT forward of a paper preset with random weights (nothing is downloaded), timed on a device of its own in a
 * worker: the browser side of `dit bench --preset P --random-weights --json`. `bench.ms_per_forward` is the median.
 */
export async function benchForward(options: BenchForwardOptions): Promise<BenchForwardResult> {
  const { worker, ...params } = options;
  return runBench(worker, "benchForward", params);
}

/** Runs one bench request in a worker of its own, ended afterwards. */
async function runBench<K extends "benchKernels" | "benchForward">(
  worker: Worker | undefined,
  type: K,
  params: RequestParams[K],
): Promise<RequestResults[K]> {
  if (!hasWebGPU()) {
    throw new NoWebGPUError("this browser has no WebGPU: use a recent Chrome, Edge or Safari (or enable WebGPU)");
  }
  const client = startWorker(worker);
  try {
    return await client.call(type, params).done;
  } finally {
    client.dispose();
  }
}

/** Removes every cached weight shard, and the kernel choices kept per GPU, from Cache Storage. */
export async function clearCache(): Promise<boolean> {
  const [weights] = await Promise.all([caches.delete(CACHE_NAMES.weights), caches.delete(CACHE_NAMES.tuning)]);
  return weights;
}
