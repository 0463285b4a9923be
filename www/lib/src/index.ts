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
import { AbortError, DeviceLostError, DitError, errorFromKind, NoWebGPUError } from "./errors.js";
import { isResultOf } from "./protocol.js";
import type { FromWorker, Request, RequestKind, RequestParams, RequestResults, ToWorker } from "./protocol.js";
import type {
  BenchForwardOptions,
  BenchForwardResult,
  BenchImageOptions,
  BenchImageResult,
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

/**
 * A loaded model in a worker of its own. If the GPU device is lost (a driver reset, the browser restarting its GPU
 * process), the sampler starts a new worker, which opens a new device and reloads the model from Cache Storage (three
 * attempts, backing off), telling `createSampler`'s `onProgress` with events marked `recovering`; a generation that
 * was running starts again from its first step with the same options (the same seed gives the same image), and its
 * `onStep` counts from 1 again. Only when every attempt fails does a call reject, with a `DeviceLostError`. A worker
 * passed as `worker` cannot be started again: after a loss its calls reject with a `DeviceLostError`.
 */
export interface Sampler {
  readonly info: SamplerInfo;
  /**
   * Generates images. Calls queue: one made while another runs starts when the earlier ones end, in order. Aborting
   * `signal` (before it starts, while it waits, or at any step) rejects it with an `AbortError` at once; the worker
   * stops it at its next step, and the next call runs as usual.
   */
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /**
   * Ends the worker, which releases the GPU device and its memory. Calls still running or queued reject with an
   * `AbortError`; calls made afterwards reject with an `InvalidInputError`.
   */
  dispose(): void;
}

/** What the page does with the events of a request. */
interface EventHandlers {
  onProgress?: (event: LoadProgress) => void;
  onStep?: (event: StepEvent) => void;
}

/** A request in flight: the message sent (sent again to a new worker), its event handlers, and what settles it. */
interface Pending extends EventHandlers {
  request: Request;
  settle: (answer: Extract<FromWorker, { type: "result" | "error" }>) => void;
  fail: (error: DitError) => void;
}

/** Milliseconds waited before each attempt to start a worker again after the GPU device was lost. */
const RESTART_DELAYS_MS = [0, 1000, 4000];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The page's end of the protocol (protocol.ts): one worker, requests told apart by id. When the GPU device is lost, a
 * worker this package started is ended (the browser releases what it held) and a new one loads the model again from
 * Cache Storage, with the create request's params; the requests pending then are sent to it again. A worker the caller
 * gave cannot be started again: its calls then fail with a DeviceLostError.
 */
class WorkerClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private disposed = false;
  /** Why the worker can no longer answer (it failed), if it cannot. */
  private dead: DitError | null = null;
  /** The create request that succeeded, sent again to a new worker. */
  private created: Request<"create"> | null = null;
  /** Whether a new worker is loading the model: requests wait to be sent until it is ready. */
  private restarting = false;
  /** Receives the events of a recovery (while a new worker loads the model). */
  onRecovery?: (event: LoadProgress) => void;

  constructor(
    private worker: Worker,
    private spawn?: () => Worker,
  ) {
    this.attach(worker);
  }

  private attach(worker: Worker) {
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      if (worker === this.worker) this.onMessage(ev.data);
    };
    worker.onerror = (ev: ErrorEvent) => {
      if (worker !== this.worker) return;
      const why = ev.message || "its script did not load; check that the server serves dit-wasm's dist/worker.js";
      this.dead = new DitError("gpu", `the dit-wasm worker failed: ${why}; create the sampler again`);
      this.worker.terminate();
      this.failAll(this.dead);
    };
  }

  private onMessage(msg: FromWorker) {
    if (msg.type === "lost") {
      if (this.spawn && this.created) void this.restart(msg.reason);
      else {
        this.dead = new DeviceLostError(
          `the GPU device was lost (${msg.reason}); this sampler runs in a worker the app created, which the ` +
            "package cannot start again: create the sampler again",
        );
        this.failAll(this.dead);
      }
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === "progress") p.onProgress?.(msg.event);
    else if (msg.type === "step") p.onStep?.(msg.event);
    else if (msg.type === "error" && msg.kind === "device-lost" && this.spawn && this.created && !this.restarting) {
      // Kept pending: sent again to the new worker.
      void this.restart(msg.message);
    } else {
      this.pending.delete(msg.id);
      p.settle(msg);
    }
  }

  /**
   * Ends the worker and starts another, which loads the model again (RESTART_DELAYS_MS: three attempts); then sends it
   * the pending requests, or fails them with a DeviceLostError.
   */
  private async restart(why: string) {
    if (this.restarting || !this.spawn || !this.created) return;
    this.restarting = true;
    this.worker.terminate();
    const say = (event: LoadProgress) => this.onRecovery?.({ ...event, recovering: true });
    say({ phase: "adapter", notice: `The GPU device was lost (${why}); reloading the model from the cache.` });
    let last: unknown = null;
    for (const delay of RESTART_DELAYS_MS) {
      await sleep(delay);
      if (this.disposed) return;
      this.worker = this.spawn();
      this.attach(this.worker);
      const id = this.nextId++;
      const request: Request<"create"> = { ...this.created, id };
      const loaded = new Promise<void>((resolve, reject) => {
        const settle: Pending["settle"] = (answer) =>
          answer.type === "error" ? reject(errorFromKind(answer.kind, answer.message)) : resolve();
        this.pending.set(id, { request, onProgress: say, settle, fail: reject });
      });
      this.worker.postMessage(request);
      try {
        await loaded;
        if (this.disposed) return;
        this.restarting = false;
        const waiting = [...this.pending.values()].sort((a, b) => a.request.id - b.request.id);
        for (const p of waiting) this.worker.postMessage(p.request);
        say({ phase: "ready", notice: "The GPU is back: the model was reloaded from the cache." });
        if (waiting.some((p) => p.request.type === "generate")) {
          say({ phase: "ready", notice: "The generation starts again from its first step." });
        }
        return;
      } catch (e) {
        last = e;
        this.pending.delete(id);
        this.worker.terminate();
        if (this.disposed) return;
      }
    }
    this.restarting = false;
    this.dead = new DeviceLostError(
      `the GPU device was lost and reloading the model failed ${RESTART_DELAYS_MS.length} times (last: ` +
        `${last instanceof Error ? last.message : String(last)}); create the sampler again, or reload the page`,
    );
    say({ phase: "adapter", notice: `The GPU could not be reopened: ${this.dead.message}.` });
    this.failAll(this.dead);
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
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    const request = { type, id, params } as Request<K>;
    const done = new Promise<RequestResults[K]>((resolve, reject) => {
      const settle: Pending["settle"] = (answer) => {
        if (answer.type === "error") reject(errorFromKind(answer.kind, answer.message));
        else if (isResultOf(answer, type)) {
          if (request.type === "create") this.created = request as Request<"create">;
          resolve(answer.value);
        } else reject(new DitError("gpu", `the dit-wasm worker answered a ${type} request as ${answer.request}`));
      };
      this.pending.set(id, { request: request as Request, ...handlers, settle, fail: reject });
    });
    if (!this.restarting) this.worker.postMessage(request);
    return { id, done };
  }

  /** Rejects request `id` with an AbortError now, and asks the worker to drop it (or stop it at its next step). */
  abort(id: number) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.fail(new AbortError());
    if (!this.disposed && !this.dead && !this.restarting) this.worker.postMessage({ type: "abort", id } satisfies ToWorker);
  }

  /** Ends the worker (the browser then releases its GPU device); what is pending rejects with an AbortError. */
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.worker.terminate();
    this.failAll(new AbortError("the sampler was disposed"));
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
 * (`navigator.storage.persist` is not offered to workers); the browser may say no, which changes nothing else. The
 * load does not wait for the answer: Firefox asks the visitor (a prompt that may stay unanswered), where Chromium
 * decides at once.
 */
function askPersistentStorage(): void {
  const storage = typeof navigator !== "undefined" ? navigator.storage : undefined;
  if (!storage?.persist) return;
  // Refused or not offered here (an insecure context, an embedded frame): the weights are cached as best effort.
  storage
    .persisted()
    .then((kept) => kept || storage.persist())
    .catch(() => {});
}

function hasWebGPU(): boolean {
  return typeof navigator !== "undefined" && "gpu" in navigator && Boolean(navigator.gpu);
}

/**
 * A worker running this package's worker script: the caller's, or one started here (and again after a GPU loss). A
 * page may construct a Worker only from a script of its own origin, so when this package is served from another
 * origin (a CDN), the worker is started from a same-origin blob whose one line imports the package's worker by its
 * absolute URL (a module import may cross origins under CORS); the worker then loads the wasm relative to its own
 * module URL, so from the package. Bundlers see the plain `new Worker(new URL(...))` and bundle the worker themselves.
 */
function startWorker(given: Worker | undefined): WorkerClient {
  if (given) return new WorkerClient(given);
  const page = globalThis.location?.origin;
  const sameOrigin = page === undefined || new URL(import.meta.url).origin === page;
  const spawn = () =>
    sameOrigin ? new Worker(new URL("./worker.js", import.meta.url), { type: "module" }) : crossOriginWorker();
  return new WorkerClient(spawn(), spawn);
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

/**
 * Starts a worker, opens the GPU and loads the model and the VAE (downloading what Cache Storage lacks). Each call has
 * a worker and a GPU device of its own: two samplers on one page both work. Aborting `signal` during the load ends
 * the worker and rejects with an `AbortError`.
 */
export async function createSampler(options: CreateSamplerOptions): Promise<Sampler> {
  if (!hasWebGPU()) {
    throw new NoWebGPUError(
      "this browser has no WebGPU: use a recent Chrome, Edge or Safari (or enable WebGPU) on an https or " +
        "localhost page",
    );
  }
  const { onProgress, worker, model, vae, signal, ...rest } = options;
  if (signal?.aborted) throw new AbortError("the load was cancelled");
  if (rest.cache !== "none" && model.toString().startsWith("hf://")) askPersistentStorage();
  const client = startWorker(worker);
  client.onRecovery = onProgress;
  const onAbort = () => client.dispose();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const where = { model: absolute(model), ...(vae ? { vae: absolute(vae) } : {}) };
    const { done } = client.call("create", { ...rest, ...where }, { onProgress });
    return new WorkerSampler(client, await done);
  } catch (e) {
    client.dispose();
    throw e instanceof AbortError && signal?.aborted ? new AbortError("the load was cancelled") : e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
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

/**
 * One whole image (the sampler's steps, then the VAE decode) of a paper preset with random weights, trained as `arch`
 * (a flow map samples at guidance 1), timed twice on a device of its own in a worker: the browser side of `dit bench
 * --preset P --random-weights [--arch A] --sample-steps N`.
 */
export async function benchImage(options: BenchImageOptions): Promise<BenchImageResult> {
  const { worker, ...params } = options;
  return runBench(worker, "benchImage", params);
}

/** Runs one bench request in a worker of its own, ended afterwards. */
async function runBench<K extends "benchKernels" | "benchForward" | "benchImage">(
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
