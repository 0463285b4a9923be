/// <reference lib="webworker" />
// The worker: owns the wasm module and the GPU device; the page talks to it through messages (protocol.ts). What comes
// out of the wasm module is untyped (`any`): the handlers' map gives each request's answer its type from types.ts, and
// tests/scripts/contract.test.mjs checks the types there that mirror Rust structs against those structs.
//
// Requests run one at a time, in the order they came (two generations on one device would share its buffers). When
// the GPU device is lost (a driver reset, the browser's GPU process restarting) the worker opens a new one and loads
// the model again with the create request's params, from Cache Storage, by itself: at once if it is idle, and a
// generation that was running starts again from its first step with the same params (the same seed gives the same
// image). Only when every attempt fails does a request fail, with kind `device-lost`.
import init, { WasmSampler, benchForward, benchKernels } from "../pkg/dit_wasm.js";
import { AbortError, DeviceLostError, InvalidInputError, isErrorKind } from "./errors.js";
import type {
  CreateParams,
  ErrorMessage,
  FromWorker,
  Request,
  RequestKind,
  RequestParams,
  RequestResults,
  RecoveryMessage,
  Result,
  ToWorker,
} from "./protocol.js";
import type { Images, LoadProgress, StepEvent } from "./types.js";

const scope = self as unknown as DedicatedWorkerGlobalScope;
const aborted = new Set<number>();
const ready = init();

/** Milliseconds waited before each attempt to reopen the device after a loss: three attempts, backing off. */
const REOPEN_DELAYS_MS = [0, 1000, 4000];
/** How many times one generation starts again after a loss before it fails. */
const MAX_RESTARTS = 2;
/** How long a failed GPU call waits for the device-lost event that may explain it. */
const LOST_GRACE_MS = 1000;

/** The loaded sampler, the params it was created with (to create it again), and a recovery in progress. */
let sampler: WasmSampler | null = null;
let created: CreateParams | null = null;
let recovery: Promise<void> | null = null;
/** Why the last recovery failed: every later generation fails with it, until a create request succeeds. */
let unrecoverable: DeviceLostError | null = null;

function post(msg: FromWorker, transfer: Transferable[] = []) {
  scope.postMessage(msg, transfer);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The pixel buffers of `images`, handed over to the page rather than copied. */
function buffers(images: Images): Transferable[] {
  return images.images.map((im) => im.buffer);
}

/** The `kind` of an error from the wasm module, if it has one. */
function kindOf(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "kind" in e && typeof e.kind === "string" ? e.kind : undefined;
}

function messageOf(e: unknown): string {
  return typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" ? e.message : String(e);
}

/** The generation running on the wasm module, if any: a sampler it borrows is freed only once it ends. */
let running: Promise<unknown> | null = null;

/** Frees a sampler (and so destroys its device), once no generation borrows it. */
function retire(s: WasmSampler) {
  if (running) running.finally(() => retire(s));
  else s.free();
}

/** Each sampler's `lost()` promise, asked once (every call would leave a waiter in the wasm module). */
const lostOf = new WeakMap<WasmSampler, Promise<string>>();
function lost(s: WasmSampler): Promise<string> {
  let p = lostOf.get(s);
  if (!p) lostOf.set(s, (p = s.lost() as Promise<string>));
  return p;
}

/** Makes `s` the sampler, and starts a recovery when its device is lost while it still is. */
function adopt(s: WasmSampler) {
  sampler = s;
  unrecoverable = null;
  lost(s).then((why) => {
    if (sampler === s) void recover(s, why);
  });
}

/** Why `s`'s device was lost, if that happens within `ms` (a GPU call can fail just before the event comes). */
function lostWithin(s: WasmSampler, ms: number): Promise<string | null> {
  return Promise.race([lost(s), sleep(ms).then(() => null)]);
}

/**
 * Opens a device and loads the models, trying again (after REOPEN_DELAYS_MS) while the device is lost on the way;
 * `onProgress` receives the loading events.
 */
async function open(params: CreateParams, onProgress: (event: LoadProgress) => void, delays: number[]) {
  for (let i = 0; ; i++) {
    await sleep(delays[i] ?? 0);
    try {
      return await WasmSampler.create(params, onProgress);
    } catch (e) {
      if (kindOf(e) !== "device-lost" || i + 1 >= delays.length) throw e;
    }
  }
}

/**
 * Opens a new device and reloads the model after `lost`'s device was lost: one recovery at a time, and none when
 * `lost` was already replaced. The page hears of it through recovery messages.
 */
function recover(gone: WasmSampler, why: string): Promise<void> {
  if (recovery) return recovery;
  if (gone !== sampler || !created) return Promise.resolve();
  const params = created;
  sampler = null;
  retire(gone);
  const say = (event: LoadProgress, state: RecoveryMessage["state"] = "loading") =>
    post({ type: "recovery", state, event: { ...event, recovering: true } });
  recovery = (async () => {
    say({ phase: "adapter", notice: `The GPU device was lost (${why}); reloading the model from the cache.` }, "lost");
    let last: unknown = null;
    for (const [i, delay] of REOPEN_DELAYS_MS.entries()) {
      await sleep(delay);
      // A create request that came meanwhile replaces what is being recovered.
      if (created !== params) return;
      try {
        const s = await WasmSampler.create(params, say);
        if (created !== params) return retire(s);
        adopt(s);
        say({ phase: "ready", notice: "The GPU is back: the model was reloaded from the cache." }, "ready");
        return;
      } catch (e) {
        last = e;
        if (i + 1 < REOPEN_DELAYS_MS.length) {
          say({ phase: "adapter", notice: `Reopening the GPU failed (${messageOf(e)}); trying again.` });
        }
      }
    }
    unrecoverable = new DeviceLostError(
      `the GPU device was lost (${why}) and reopening it failed ${REOPEN_DELAYS_MS.length} times (last: ` +
        `${messageOf(last)}); create the sampler again, or reload the page`,
    );
    say({ phase: "adapter", notice: `The GPU could not be reopened: ${unrecoverable.message}.` }, "failed");
  })().finally(() => {
    recovery = null;
  });
  return recovery;
}

/** What a handler answers: the request's result, and the buffers to hand over with it. */
interface Answer<K extends RequestKind> {
  value: RequestResults[K];
  transfer?: Transferable[];
}

/** What the worker does for each kind of request. */
const handlers: { [K in RequestKind]: (params: RequestParams[K], id: number) => Promise<Answer<K>> } = {
  async create(params, id) {
    created = params;
    const old = sampler;
    sampler = null;
    if (old) retire(old);
    await recovery;
    const s = await open(params, (event: LoadProgress) => post({ type: "progress", id, event }), REOPEN_DELAYS_MS);
    if (created !== params) {
      retire(s);
      throw new AbortError("a newer create request replaced this one");
    }
    adopt(s);
    return { value: s.info() };
  },
  async generate(params, id) {
    for (let restarts = 0; ; restarts++) {
      await recovery;
      if (aborted.has(id)) throw new AbortError();
      if (unrecoverable) throw unrecoverable;
      const s = sampler;
      if (!s) throw new InvalidInputError("the sampler is not created");
      const run: Promise<Images> = s.generate(params, (event: StepEvent) => {
        post({ type: "step", id, event }, event.preview ? buffers(event.preview) : []);
        return !aborted.has(id);
      });
      running = run;
      // A loss can leave a GPU call waiting for ever: the loss itself ends the wait.
      const loss = lost(s).then((why) => Promise.reject(new DeviceLostError(why)));
      loss.catch(() => {});
      try {
        const value = await Promise.race([run, loss]);
        return { value: value as RequestResults["generate"], transfer: buffers(value) };
      } catch (e) {
        const kind = kindOf(e);
        if (kind === "aborted" || kind === "invalid-input") throw e;
        const why = kind === "device-lost" ? messageOf(e) : await lostWithin(s, LOST_GRACE_MS);
        if (why === null || restarts >= MAX_RESTARTS) throw e;
        await recover(s, why);
        post({
          type: "recovery",
          state: "ready",
          event: { phase: "ready", recovering: true, notice: "The generation starts again from its first step." },
        });
      } finally {
        run
          .catch(() => {})
          .finally(() => {
            if (running === run) running = null;
          });
      }
    }
  },
  async benchKernels(params) {
    return { value: JSON.parse(await benchKernels(params)) };
  },
  async benchForward(params) {
    return { value: JSON.parse(await benchForward(params)) };
  },
};

/** Runs a request and posts its result. */
async function answer<K extends RequestKind>(msg: Request<K>) {
  const { value, transfer = [] } = await handlers[msg.type](msg.params, msg.id);
  const result: Result<K> = { type: "result", id: msg.id, request: msg.type, value };
  scope.postMessage(result, transfer);
}

/** An error from the wasm module (a `kind` and a message) or from anywhere else, as it crosses to the page. */
function failure(id: number, e: unknown): ErrorMessage {
  const k = kindOf(e);
  return { type: "error", id, kind: isErrorKind(k) ? k : "gpu", message: messageOf(e) };
}

/** The requests, run one after another. */
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  if (msg.type === "abort") {
    aborted.add(msg.id);
    return;
  }
  queue = queue.then(async () => {
    try {
      await ready;
      if (aborted.has(msg.id)) throw new AbortError();
      await answer(msg);
    } catch (e) {
      post(failure(msg.id, e));
    } finally {
      aborted.delete(msg.id);
    }
  });
};
