/** Why an operation failed; every error the package throws is a {@link DitError} with one of these kinds. */
export type DitErrorKind =
  | "no-webgpu"
  | "adapter-limits"
  | "download"
  | "integrity"
  | "aborted"
  | "device-lost"
  | "invalid-input"
  | "gpu";

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

/** Rebuilds a typed error from its kind and message (errors cross the worker boundary as plain data). */
export function errorFromKind(kind: string, message: string): DitError {
  switch (kind) {
    case "no-webgpu":
      return new NoWebGPUError(message);
    case "adapter-limits":
      return new AdapterLimitsError(message);
    case "download":
      return new DownloadError(message);
    case "integrity":
      return new IntegrityError(message);
    case "aborted":
      return new AbortError(message);
    case "device-lost":
      return new DeviceLostError(message);
    case "invalid-input":
      return new InvalidInputError(message);
    default:
      return new GpuError(message);
  }
}
