/// <reference lib="webworker" />
// The worker: owns the wasm module and the GPU device; the page talks to it through messages (protocol.ts).
import init, { WasmSampler, benchForward, benchKernels } from "../pkg/dit_wasm.js";
import type { FromWorker, ToWorker } from "./protocol.js";

const scope = self as unknown as DedicatedWorkerGlobalScope;
let sampler: WasmSampler | null = null;
const aborted = new Set<number>();
const ready = init();

function post(msg: FromWorker, transfer: Transferable[] = []) {
  scope.postMessage(msg, transfer);
}

function fail(id: number, e: unknown) {
  const err = e as { kind?: string; message?: string };
  post({ type: "error", id, kind: err?.kind ?? "gpu", message: err?.message ?? String(e) });
}

function transferables(v: unknown): Transferable[] {
  const out: Transferable[] = [];
  const images = (v as { images?: Uint8ClampedArray[] })?.images;
  if (Array.isArray(images)) for (const im of images) out.push(im.buffer);
  return out;
}

scope.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  if (msg.type === "abort") {
    aborted.add(msg.id);
    return;
  }
  try {
    await ready;
    if (msg.type === "create") {
      sampler?.free();
      sampler = await WasmSampler.create(msg.options, (event: unknown) => post({ type: "progress", id: msg.id, event }));
      post({ type: "result", id: msg.id, value: sampler.info() });
    } else if (msg.type === "generate") {
      if (!sampler) throw Object.assign(new Error("the sampler is not created"), { kind: "invalid-input" });
      const value = await sampler.generate(msg.options, (event: unknown) => {
        const preview = (event as { preview?: unknown }).preview;
        post({ type: "step", id: msg.id, event }, preview ? transferables(preview) : []);
        return !aborted.has(msg.id);
      });
      post({ type: "result", id: msg.id, value }, transferables(value));
    } else if (msg.type === "benchKernels") {
      post({ type: "result", id: msg.id, value: JSON.parse(await benchKernels(msg.options)) });
    } else if (msg.type === "benchForward") {
      post({ type: "result", id: msg.id, value: JSON.parse(await benchForward(msg.options)) });
    }
  } catch (e) {
    fail(msg.id, e);
  } finally {
    aborted.delete(msg.id);
  }
};
