// The page's line about the GPU, in words a visitor understands. Browsers say little about the adapter (to keep pages
// from fingerprinting it): Chromium gives a vendor and an architecture ("nvidia", "ampere"), Firefox nothing, and
// both mark a software renderer as a fallback adapter. The line names what is known and says when the browser keeps
// the rest to itself.

/** What the browser says about its adapter (`GPUAdapterInfo`); empty strings where it says nothing. */
export interface BrowserAdapter {
  vendor: string;
  architecture: string;
  description: string;
  /** A software renderer (the CPU doing the GPU's work), as the browser marks it. */
  isFallbackAdapter: boolean;
}

/** Vendors as they are written (browsers report them in lower case). */
const VENDORS: Record<string, string> = {
  nvidia: "NVIDIA",
  amd: "AMD",
  ati: "AMD",
  intel: "Intel",
  apple: "Apple",
  qualcomm: "Qualcomm",
  arm: "Arm",
  "img-tec": "Imagination",
  microsoft: "Microsoft",
  mesa: "Mesa",
  google: "Google",
};

/** Software renderers by the architecture (or the description) a browser reports. */
const SOFTWARE: Record<string, string> = {
  swiftshader: "SwiftShader",
  llvmpipe: "llvmpipe",
  lavapipe: "lavapipe",
  warp: "WARP",
};

/** The browser's name for the sentence "… does not say which", from its user agent. */
export function browserName(userAgent: string): string {
  if (/Firefox\//.test(userAgent)) return "Firefox";
  if (/Edg\//.test(userAgent)) return "Edge";
  if (/Chrome\/|Chromium\//.test(userAgent)) return "Chrome";
  if (/Safari\//.test(userAgent)) return "Safari";
  return "this browser";
}

/** What the package reported of the adapter (wgpu's name: the browser's description, often empty; its device type). */
export interface Reported {
  name: string;
  device_type: string;
}

/**
 * The device in words, e.g. "NVIDIA GPU (ampere)", "SwiftShader, a software renderer on the processor (slow)", "a
 * software renderer on the processor (slow), which Firefox does not name" or "a GPU that Firefox does not name". `info` is what the browser says
 * (null where it was not asked), `reported` what the package reported.
 */
export function deviceName(info: BrowserAdapter | null, reported: Reported, userAgent: string): string {
  const described = (info?.description || reported.name).trim();
  const arch = (info?.architecture ?? "").trim();
  const vendor = (info?.vendor ?? "").trim();
  const software = Object.entries(SOFTWARE).find(([k]) => `${arch} ${described}`.toLowerCase().includes(k))?.[1];
  const fallback = !!info?.isFallbackAdapter || reported.device_type === "Cpu" || !!software;
  const onCpu = "a software renderer on the processor (slow)";
  if (software) return `${software}, ${onCpu}`;
  if (described) return fallback ? `${described}, ${onCpu}` : described;
  if (vendor) {
    const v = VENDORS[vendor.toLowerCase()] ?? vendor;
    if (fallback) return `${v}'s ${onCpu.slice(2)}`;
    return arch ? `${v} GPU (${arch})` : `${v} GPU`;
  }
  const browser = browserName(userAgent);
  return fallback ? `${onCpu}, which ${browser} does not name` : `a GPU that ${browser} does not name`;
}

/** What this page's browser says about its default adapter (the one the package's worker opens), or null. */
export async function browserAdapter(): Promise<BrowserAdapter | null> {
  try {
    const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ info?: Partial<BrowserAdapter> } | null> } }).gpu;
    const info = (await gpu?.requestAdapter())?.info;
    if (!info) return null;
    return {
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      description: info.description ?? "",
      isFallbackAdapter: !!info.isFallbackAdapter,
    };
  } catch {
    return null;
  }
}
