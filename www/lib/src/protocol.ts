/**
 * Messages between the page (index.ts) and the worker (worker.ts). The page sends requests of four kinds, each with
 * its params type, and an abort; the worker answers each request with events (progress while loading, steps while
 * generating), then one result of the kind's result type, or an error. The worker runs requests one at a time, in the
 * order they came. When the GPU device is lost it says so (a lost message, which answers no request): the page then
 * starts a new worker if it started this one.
 */
import type { DitErrorKind } from "./errors.js";
import type * as T from "./types.js";

/** Opens the GPU and loads both models: the options less what cannot cross to the worker. */
export interface CreateParams extends Omit<T.CreateSamplerOptions, "model" | "vae" | "onProgress" | "worker" | "signal"> {
  /** The DiT's location, made absolute against the page's URL. */
  model: string;
  /** The VAE decoder's location, made absolute against the page's URL (absent: a Hub pipeline's own `vae/`). */
  vae?: string;
}

/** Generates images with the loaded models. */
export type GenerateParams = Omit<T.GenerateOptions, "signal" | "onStep">;

/** Times the linear kernels on a device of the worker's own. */
export type BenchKernelsParams = Omit<T.BenchKernelsOptions, "worker">;

/** Times one forward of a preset with random weights on a device of the worker's own. */
export type BenchForwardParams = Omit<T.BenchForwardOptions, "worker">;

/** Times one whole image of a preset with random weights on a device of the worker's own. */
export type BenchImageParams = Omit<T.BenchImageOptions, "worker">;

/** What each kind of request carries. */
export interface RequestParams {
  create: CreateParams;
  generate: GenerateParams;
  benchKernels: BenchKernelsParams;
  benchForward: BenchForwardParams;
  benchImage: BenchImageParams;
}

/** What each kind of request resolves to. */
export interface RequestResults {
  create: T.SamplerInfo;
  generate: T.GenerateResult;
  benchKernels: T.KernelBench;
  benchForward: T.BenchForwardResult;
  benchImage: T.BenchImageResult;
}

export type RequestKind = keyof RequestParams;

/** A request; `id` is chosen by the page and names every message about it. */
export type Request<K extends RequestKind = RequestKind> = {
  [P in K]: { type: P; id: number; params: RequestParams[P] };
}[K];

/** Stops the generate request `id` at its next step (it then fails with kind "aborted"); has no answer of its own. */
export interface AbortMessage {
  type: "abort";
  id: number;
}

export type ToWorker = Request | AbortMessage;

/** Loading progress of a create request. */
export interface ProgressMessage {
  type: "progress";
  id: number;
  event: T.LoadProgress;
}

/** A step of a generate request. */
export interface StepMessage {
  type: "step";
  id: number;
  event: T.StepEvent;
}

/**
 * The sampler's GPU device was lost (a driver reset, the browser's GPU process restarting). Sent when that happens, not
 * as the answer of a request; the worker answers nothing more that needs the device.
 */
export interface LostMessage {
  type: "lost";
  reason: string;
}

/** The value a request of kind `K` resolved to. */
export interface Result<K extends RequestKind> {
  type: "result";
  id: number;
  /** The kind of the request answered. */
  request: K;
  value: RequestResults[K];
}

/** A result of any kind: one member per kind, so that `request` tells the type of `value`. */
export type ResultMessage = { [K in RequestKind]: Result<K> }[RequestKind];

/** Why a request failed. */
export interface ErrorMessage {
  type: "error";
  id: number;
  kind: DitErrorKind;
  message: string;
}

export type FromWorker = ProgressMessage | StepMessage | ResultMessage | ErrorMessage | LostMessage;

/** Whether `msg` answers a request of kind `kind`. */
export function isResultOf<K extends RequestKind>(msg: Result<RequestKind>, kind: K): msg is Result<K> {
  return msg.request === kind;
}
