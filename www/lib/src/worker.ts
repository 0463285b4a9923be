/// <reference lib="webworker" />
// The worker: owns the wasm module and the GPU device; the page talks to it through messages (protocol.ts). What comes
// out of the wasm module is untyped (`any`): the handlers' map gives each request's answer its type from types.ts, and
// tests/scripts/contract.test.mjs checks the types there that mirror Rust structs against those structs.
import init, { WasmSampler, benchForward, benchKernels } from "../pkg/dit_wasm.js";
import { InvalidInputError, isErrorKind } from "./errors.js";
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
let sampler: WasmSampler | null = null;
const aborted = new Set<number>();
const ready = init();

function post(msg: FromWorker, transfer: Transferable[] = []) {
  scope.postMessage(msg, transfer);
}

/** The pixel buffers of `images`, handed over to the page rather than copied. */
function buffers(images: Images): Transferable[] {
  return images.images.map((im) => im.buffer);
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
    sampler = await WasmSampler.create(params, (event: LoadProgress) => post({ type: "progress", id, event }));
    return { value: sampler.info() };
  },
  async generate(params, id) {
    if (!sampler) throw new InvalidInputError("the sampler is not created");
    const value = await sampler.generate(params, (event: StepEvent) => {
      post({ type: "step", id, event }, event.preview ? buffers(event.preview) : []);
      return !aborted.has(id);
    });
    return { value, transfer: buffers(value) };
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
  const has = <P extends string>(o: unknown, p: P): o is Record<P, unknown> =>
    typeof o === "object" && o !== null && p in o;
  const kind = has(e, "kind") && isErrorKind(e.kind) ? e.kind : "gpu";
  const message = has(e, "message") && typeof e.message === "string" ? e.message : String(e);
  return { type: "error", id, kind, message };
}

scope.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  if (msg.type === "abort") {
    aborted.add(msg.id);
    return;
  }
  try {
    await ready;
    await answer(msg);
  } catch (e) {
    post(failure(msg.id, e));
  } finally {
    aborted.delete(msg.id);
  }
};
