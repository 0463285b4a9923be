/// <reference lib="webworker" />
// The worker: owns the wasm module and the GPU device; the page talks to it through messages (protocol.ts). What comes
// out of the wasm module is typed by its declarations (pkg/dit_wasm.d.ts, written from the Rust types by tsify); an
// answer is given its types.ts type (which differs at most by the index signature of AdapterInfo, room for fields a
// later version adds), and tests/scripts/contract.test.mjs checks that the two declarations agree.
//
// Requests run one at a time, in the order they came (two generations on one device would share its buffers). When
// the GPU device is lost (a driver reset, the browser's GPU process restarting) the worker says so (a lost message),
// and a generation running then fails with kind `device-lost`; the page's end starts a new worker (index.ts).
// The device is not reopened here: after a loss during a generation, a device reopened in the same wasm instance
// often never finished loading (in Chromium), while a new worker did in every run of the tests.
import init, { WasmSampler, benchForward, benchImage, benchKernels } from "../pkg/dit_wasm.js";
import { AbortError, DeviceLostError, InvalidInputError, isErrorKind } from "./errors.js";
import type {
  ErrorMessage,
  FromWorker,
  Request,
  RequestKind,
  RequestParams,
  RequestResults,
  Result,
  ToWorker,
} from "./protocol.js";
import type { Images, LoadProgress, StepEvent } from "./types.js";

const scope = self as unknown as DedicatedWorkerGlobalScope;
const aborted = new Set<number>();
const ready = init();

/** How long a failed GPU call waits for the device-lost event that may explain it. */
const LOST_GRACE_MS = 1000;

let sampler: WasmSampler | null = null;
/** Why the sampler's device was lost, once it was. */
let lostReason: string | null = null;

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

/** Each sampler's `lost()` promise, asked once (every call would leave a waiter in the wasm module). */
const lostOf = new WeakMap<WasmSampler, Promise<string>>();
function lost(s: WasmSampler): Promise<string> {
  let p = lostOf.get(s);
  if (!p) lostOf.set(s, (p = s.lost() as Promise<string>));
  return p;
}

/** Makes `s` the sampler, and tells the page when its device is lost while it still is. */
function adopt(s: WasmSampler) {
  sampler = s;
  lostReason = null;
  lost(s).then((why) => {
    if (sampler !== s) return;
    lostReason = why;
    post({ type: "lost", reason: why });
  });
}

/** Why `s`'s device was lost, if that happens within `ms` (a GPU call can fail just before the event comes). */
function lostWithin(s: WasmSampler, ms: number): Promise<string | null> {
  return Promise.race([lost(s), sleep(ms).then(() => null)]);
}

/** What a handler answers: the request's result, and the buffers to hand over with it. */
interface Answer<K extends RequestKind> {
  value: RequestResults[K];
  transfer?: Transferable[];
}

/** What the worker does for each kind of request. */
const handlers: { [K in RequestKind]: (params: RequestParams[K], id: number) => Promise<Answer<K>> } = {
  async create(params, id) {
    sampler?.free();
    sampler = null;
    const s = await WasmSampler.create(params, (event: LoadProgress) => post({ type: "progress", id, event }));
    adopt(s);
    return { value: s.info() as RequestResults["create"] };
  },
  async generate(params, id) {
    const s = sampler;
    if (!s) throw new InvalidInputError("the sampler is not created");
    if (lostReason) throw new DeviceLostError(lostReason);
    const run: Promise<Images> = s.generate(params, (event: StepEvent) => {
      post({ type: "step", id, event }, event.preview ? buffers(event.preview) : []);
      return !aborted.has(id);
    });
    run.catch(() => {});
    // A loss can leave a GPU call waiting for ever: the loss itself ends the wait.
    const loss = lost(s).then((why) => Promise.reject(new DeviceLostError(why)));
    loss.catch(() => {});
    try {
      const value = await Promise.race([run, loss]);
      return { value: value as RequestResults["generate"], transfer: buffers(value) };
    } catch (e) {
      const kind = kindOf(e);
      if (kind === "aborted" || kind === "invalid-input" || kind === "device-lost") throw e;
      const why = await lostWithin(s, LOST_GRACE_MS);
      throw why === null ? e : new DeviceLostError(why);
    }
  },
  async benchKernels(params) {
    return { value: (await benchKernels(params)) as RequestResults["benchKernels"] };
  },
  async benchForward(params) {
    return { value: (await benchForward(params)) as RequestResults["benchForward"] };
  },
  async benchImage(params) {
    return { value: (await benchImage(params)) as RequestResults["benchImage"] };
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
