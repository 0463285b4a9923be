/**
 * Why an operation failed; every error the package throws is a {@link DitError} with one of these kinds. The wasm
 * module gives its errors the same `kind` strings (the crate's `ErrorKind`, src/web/types.rs, declared to TypeScript
 * by tsify); tests/scripts/contract.test.mjs checks that the two lists agree.
 */
export const ERROR_KINDS = [
  "no-webgpu",
  "adapter-limits",
  "download",
  "not-found",
  "gated",
  "integrity",
  "aborted",
  "device-lost",
  "invalid-input",
  "gpu",
] as const;

/** One of {@link ERROR_KINDS}. */
export type DitErrorKind = (typeof ERROR_KINDS)[number];

/** Whether `kind` is one of {@link ERROR_KINDS}. */
export function isErrorKind(kind: unknown): kind is DitErrorKind {
  return ERROR_KINDS.some((k) => k === kind);
}

/** Base class of the package's errors; `message` is a sentence a person can act on. */
export class DitError extends Error {
  readonly kind: DitErrorKind;
  constructor(kind: DitErrorKind, message: string) {
    super(message);
    this.kind = kind;
    this.name = "DitError";
  }
}

/** The browser has no WebGPU (or no adapter). */
export class NoWebGPUError extends DitError {
  constructor(message: string) {
    super("no-webgpu", message);
    this.name = "NoWebGPUError";
  }
}
/** The adapter's limits are too small for the model; the message names the limit and what the model needs. */
export class AdapterLimitsError extends DitError {
  constructor(message: string) {
    super("adapter-limits", message);
    this.name = "AdapterLimitsError";
  }
}
/** A model file could not be downloaded (HTTP error, network failure). */
export class DownloadError extends DitError {
  constructor(message: string) {
    super("download", message);
    this.name = "DownloadError";
  }
}
/** A model file or repository is not there (HTTP 404): check the repository name, the revision and the path. */
export class NotFoundError extends DitError {
  constructor(message: string) {
    super("not-found", message);
    this.name = "NotFoundError";
  }
}
/** The server refused access (HTTP 401/403), as the Hub does for a gated or private repository. */
export class GatedError extends DitError {
  constructor(message: string) {
    super("gated", message);
    this.name = "GatedError";
  }
}
/** A model file is corrupt or is not the model it claims to be (sha256 mismatch, wrong tensors). */
export class IntegrityError extends DitError {
  constructor(message: string) {
    super("integrity", message);
    this.name = "IntegrityError";
  }
}
/** The operation was aborted through its AbortSignal. */
export class AbortError extends DitError {
  constructor(message = "generation was cancelled") {
    super("aborted", message);
    this.name = "AbortError";
  }
}
/** The GPU device was lost; create the sampler again. */
export class DeviceLostError extends DitError {
  constructor(message: string) {
    super("device-lost", message);
    this.name = "DeviceLostError";
  }
}
/** A bad option value. */
export class InvalidInputError extends DitError {
  constructor(message: string) {
    super("invalid-input", message);
    this.name = "InvalidInputError";
  }
}
/** Any other GPU failure. */
export class GpuError extends DitError {
  constructor(message: string) {
    super("gpu", message);
    this.name = "GpuError";
  }
}

/** The class thrown for each kind. */
const ERROR_CLASSES: { [K in DitErrorKind]: new (message: string) => DitError } = {
  "no-webgpu": NoWebGPUError,
  "adapter-limits": AdapterLimitsError,
  download: DownloadError,
  "not-found": NotFoundError,
  gated: GatedError,
  integrity: IntegrityError,
  aborted: AbortError,
  "device-lost": DeviceLostError,
  "invalid-input": InvalidInputError,
  gpu: GpuError,
};

/**
 * Rebuilds a typed error from its kind and message (errors cross the worker boundary as plain data); a kind outside
 * {@link ERROR_KINDS} gives a {@link GpuError}.
 */
export function errorFromKind(kind: string, message: string): DitError {
  return new ERROR_CLASSES[isErrorKind(kind) ? kind : "gpu"](message);
}
