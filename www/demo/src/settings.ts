// What makes an image: the model and the sampling settings. They travel in a result's link (the page's query string)
// and in its PNG (a `parameters` text chunk, written as image tools write theirs: a first line naming the subject,
// a last line of `Key: value` pairs), and come back from either to set the page's controls.

export type Channels = "official" | "all";

export interface Settings {
  /** A choice of the page's model list (`demo`, `hf-256`, …) or a location (hf://…, https://…). */
  model: string;
  /** The VAE's location, when the model's is not implied. */
  vae?: string;
  classLabel: number;
  seed: number;
  cfgScale: number;
  steps: number;
  sampler: string;
  cfgChannels: Channels;
  /** A flow map's grid from 1 down to 0, when not the uniform one of `steps` steps. */
  grid?: number[];
  /** A flow map's time shift, when not 1. */
  shift?: number;
  /** The class embedding moved towards `with`'s by `alpha` (0: the class itself, 1: `with`). */
  blend?: { with: number; alpha: number };
  /** A batch of `count` images (each with its own noise) and which one this is; absent for one image. */
  batch?: { count: number; index: number };
}

const SAMPLER_NAMES: Record<string, string> = {
  ddpm: "DDPM",
  ddim: "DDIM",
  dpmpp2m: "DPM-Solver++(2M)",
  euler: "Euler",
  heun: "Heun",
  "euler-maruyama": "Euler-Maruyama",
  dopri5: "dopri5",
  flowmap: "flow map",
  "flowmap-consistency": "flow map (consistency)",
};

export const samplerName = (s: string) => SAMPLER_NAMES[s] ?? s;

/** One line for a caption: "seed 42 · guidance 4 · 50 steps · DDIM" (a blend's alpha first). */
export function describe(s: Settings): string {
  // dopri5 chooses its own steps: the count asked for is not used.
  const steps = s.sampler === "dopri5" ? "adaptive steps" : s.steps === 1 ? "1 step" : `${s.steps} steps`;
  const parts = [`seed ${s.seed}`, `guidance ${s.cfgScale}`, steps, samplerName(s.sampler)];
  if (s.grid) parts.push(`grid ${s.grid.join(", ")}`);
  if (s.shift !== undefined) parts.push(`shift ${s.shift}`);
  if (s.blend) parts.unshift(`α ${s.blend.alpha}`);
  if (s.cfgChannels !== "official") parts.push("all channels");
  if (s.batch) parts.push(`image ${s.batch.index + 1} of ${s.batch.count}`);
  return parts.join(" · ");
}

const num = (v: string | null | undefined) => (v == null || v.trim() === "" || !Number.isFinite(Number(v)) ? undefined : Number(v));

/** A grid written as "1,0.55,0", or undefined when that is not a list of numbers. */
function grid(v: string | null | undefined): number[] | undefined {
  const g = v?.split(",").map((x) => num(x));
  return g && g.length >= 2 && g.every((x) => x !== undefined) ? (g as number[]) : undefined;
}

/** The query string of a link that reproduces `s` (`extra`: parameters of the page kept as they are, e.g. `endpoint`). */
export function toQuery(s: Settings, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({ model: s.model });
  if (s.vae) q.set("vae", s.vae);
  q.set("class", String(s.classLabel));
  q.set("seed", String(s.seed));
  q.set("cfg", String(s.cfgScale));
  q.set("steps", String(s.steps));
  q.set("sampler", s.sampler);
  q.set("channels", s.cfgChannels);
  if (s.grid) q.set("grid", s.grid.join(","));
  if (s.shift !== undefined) q.set("shift", String(s.shift));
  if (s.blend) {
    q.set("blend", String(s.blend.with));
    q.set("alpha", String(s.blend.alpha));
  }
  if (s.batch) {
    q.set("count", String(s.batch.count));
    q.set("image", String(s.batch.index));
  }
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return `?${q}`;
}

/** The settings a link names, or null when it names none (no `seed`: a plain visit, or only `?model=`). */
export function fromQuery(q: URLSearchParams): Partial<Settings> | null {
  const seed = num(q.get("seed"));
  if (seed === undefined) return null;
  const s: Partial<Settings> = { seed };
  const model = q.get("model");
  if (model) s.model = model;
  if (q.get("vae")) s.vae = q.get("vae")!;
  s.classLabel = num(q.get("class"));
  s.cfgScale = num(q.get("cfg"));
  s.steps = num(q.get("steps"));
  if (q.get("sampler")) s.sampler = q.get("sampler")!;
  const ch = q.get("channels");
  if (ch === "official" || ch === "all") s.cfgChannels = ch;
  const g = grid(q.get("grid"));
  if (g) s.grid = g;
  const shift = num(q.get("shift"));
  if (shift !== undefined) s.shift = shift;
  const w = num(q.get("blend"));
  const alpha = num(q.get("alpha"));
  if (w !== undefined && alpha !== undefined) s.blend = { with: w, alpha };
  const count = num(q.get("count"));
  if (count !== undefined && count > 1) s.batch = { count, index: num(q.get("image")) ?? 0 };
  return s;
}

/**
 * The `parameters` text of a PNG:
 *   golden retriever
 *   Class: 207, Steps: 50, Sampler: ddim, CFG scale: 4, Seed: 42, Guidance channels: official, Size: 256x256, Model: hf-256
 */
export function toPngText(s: Settings, className: string, size: number): string {
  const kv: [string, string | number][] = [
    ["Class", s.classLabel],
    ["Steps", s.steps],
    ["Sampler", s.sampler],
    ["CFG scale", s.cfgScale],
    ["Seed", s.seed],
    ["Guidance channels", s.cfgChannels],
    ["Size", `${size}x${size}`],
    ["Model", s.model],
  ];
  if (s.vae) kv.push(["VAE", s.vae]);
  if (s.grid) kv.push(["Grid", s.grid.join(",")]);
  if (s.shift !== undefined) kv.push(["Shift", s.shift]);
  if (s.blend) kv.push(["Blend with", s.blend.with], ["Blend alpha", s.blend.alpha]);
  if (s.batch) kv.push(["Batch", s.batch.count], ["Image", s.batch.index]);
  return `${className}\n${kv.map(([k, v]) => `${k}: ${v}`).join(", ")}`;
}

/** The settings of a `parameters` text written by `toPngText`; throws with a sentence when it is not one. */
export function fromPngText(text: string): Partial<Settings> {
  const last = text.trim().split("\n").pop() ?? "";
  const kv = new Map<string, string>();
  for (const part of last.split(/, (?=[A-Z][A-Za-z ]*: )/)) {
    const m = part.match(/^([A-Z][A-Za-z ]*): (.*)$/);
    if (m) kv.set(m[1], m[2].trim());
  }
  const seed = num(kv.get("Seed"));
  const classLabel = num(kv.get("Class"));
  if (seed === undefined || classLabel === undefined) throw new Error("its parameters name no class and seed (not a picture from this page)");
  const s: Partial<Settings> = { seed, classLabel };
  if (kv.get("Model")) s.model = kv.get("Model");
  if (kv.get("VAE")) s.vae = kv.get("VAE");
  s.cfgScale = num(kv.get("CFG scale"));
  s.steps = num(kv.get("Steps"));
  if (kv.get("Sampler")) s.sampler = kv.get("Sampler");
  const ch = kv.get("Guidance channels");
  if (ch === "official" || ch === "all") s.cfgChannels = ch;
  const g = grid(kv.get("Grid"));
  if (g) s.grid = g;
  const shift = num(kv.get("Shift"));
  if (shift !== undefined) s.shift = shift;
  const w = num(kv.get("Blend with"));
  const alpha = num(kv.get("Blend alpha"));
  if (w !== undefined && alpha !== undefined) s.blend = { with: w, alpha };
  const count = num(kv.get("Batch"));
  if (count !== undefined && count > 1) s.batch = { count, index: num(kv.get("Image")) ?? 0 };
  return s;
}
