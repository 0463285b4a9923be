// The page: loads a model with the `dit-wasm` package (the embedded demo by default) and generates images.
import { clearCache, createSampler, DitError, type Sampler, type LoadProgress, type GenerateResult, type GenerateOptions } from "dit-wasm";
import imagenetClasses from "./imagenet-classes.json";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  adapter: $("adapter"),
  modelChoice: $<HTMLSelectElement>("model-choice"),
  modelSize: $("model-size"),
  notice: $("notice"),
  urlFields: $("url-fields"),
  modelUrl: $<HTMLInputElement>("model-url"),
  vaeUrl: $<HTMLInputElement>("vae-url"),
  load: $<HTMLButtonElement>("load"),
  clearCache: $<HTMLButtonElement>("clear-cache"),
  cacheState: $("cache-state"),
  loadProgress: $<HTMLProgressElement>("load-progress"),
  loadText: $("load-text"),
  classSearch: $<HTMLInputElement>("class-search"),
  classSelect: $<HTMLSelectElement>("class-select"),
  cfg: $<HTMLInputElement>("cfg"),
  steps: $<HTMLInputElement>("steps"),
  sampler: $<HTMLSelectElement>("sampler"),
  cfgChannels: $<HTMLSelectElement>("cfg-channels"),
  seed: $<HTMLInputElement>("seed"),
  dice: $<HTMLButtonElement>("dice"),
  count: $<HTMLInputElement>("count"),
  generate: $<HTMLButtonElement>("generate"),
  cancel: $<HTMLButtonElement>("cancel"),
  progress: $<HTMLProgressElement>("progress"),
  progressText: $("progress-text"),
  preview: $<HTMLCanvasElement>("preview"),
  error: $("error"),
  gallery: $("gallery"),
};

/**
 * Counters for automation: how many weight files came from the network and from Cache Storage, and the GPU memory the
 * sampler held after the last generation.
 */
const stats = { downloaded: 0, cached: 0, generated: 0, notices: [] as string[], gpuMemory: null as GenerateResult["gpuMemory"] | null };
(window as unknown as { __ditStats: typeof stats }).__ditStats = stats;

let sampler: Sampler | null = null;
let classNames: string[] = [];
let running: AbortController | null = null;

const params = new URLSearchParams(location.search);

/**
 * The revision of the official repos that the page downloads. It is `main`: the commits could not be read where this
 * page was written (no access to the Hub), so set it to each repo's commit to pin the files (see the README). The
 * cached weights are keyed by the commit the Hub resolves `main` to (its redirects name it), so a change of `main` is
 * never mistaken for the cached copy.
 */
const OFFICIAL_REVISION = "main";

/** The SD VAE decoder's parameters (the encoder is not read). */
const VAE_DECODER_PARAMETERS = 49_490_199;

/**
 * Bytes a first visit downloads for an official DiT-XL/2 pipeline: the transformer's 674,834,720 f32 parameters
 * (its file holds about 300 MB more, the 27 duplicated copies of the timestep and class embedders, which are not
 * read) and the SD VAE decoder's 49,490,199 (the encoder is not read). The same at 256 and 512 px (the position
 * embedding is computed, not stored). They are kept in fp16: half as many bytes.
 */
const OFFICIAL_DOWNLOAD_BYTES = (674_834_720 + VAE_DECODER_PARAMETERS) * 4;

/**
 * The SiT release (nyu-visionx/SiT-collections): one torch.save'd f32 state dict per model at the repo root, DiT's
 * names, so the location says it is a SiT (`#arch=sit`); the VAE is sd-vae-ft-ema, as SiT's `sample.py` uses by
 * default. The revision is `main` for the same reason as the DiT presets' (`OFFICIAL_REVISION`). The parameters are
 * the paper's (S 33M, B 130M, L 458M, XL 675M), read in f32 (4 bytes each), plus the VAE decoder's.
 */
const SIT_VAE = `hf://stabilityai/sd-vae-ft-ema@${OFFICIAL_REVISION}`;
const sit = (size: string, parameters: number) => ({
  location: `hf://nyu-visionx/SiT-collections@${OFFICIAL_REVISION}/SiT-${size}-2-256.pt#arch=sit`,
  vae: SIT_VAE,
  bytes: (parameters + VAE_DECODER_PARAMETERS) * 4,
});

/** The models the choice offers besides the demo: Hub locations (with a VAE when the model has none) and what they download. */
const OFFICIAL: Record<string, { location: string; vae?: string; bytes: number }> = {
  "hf-256": { location: `hf://facebook/DiT-XL-2-256@${OFFICIAL_REVISION}`, bytes: OFFICIAL_DOWNLOAD_BYTES },
  "hf-512": { location: `hf://facebook/DiT-XL-2-512@${OFFICIAL_REVISION}`, bytes: OFFICIAL_DOWNLOAD_BYTES },
  "sit-s": sit("S", 33e6),
  "sit-b": sit("B", 130e6),
  "sit-l": sit("L", 458e6),
  "sit-xl": sit("XL", 675e6),
};

/** The sampler choices of each model kind: a DiT is a diffusion, a SiT a flow (the other kind's samplers refuse it). */
const SAMPLERS: Record<"dit" | "sit", [string, string][]> = {
  dit: [
    ["ddpm", "DDPM (learned variance, as in the paper; use 250 steps)"],
    ["ddim", "DDIM"],
    ["dpmpp2m", "DPM-Solver++(2M) (good at 20 steps)"],
  ],
  sit: [
    ["euler", "Euler ODE (SiT's flow; 50 steps or more)"],
    ["heun", "Heun ODE (two evaluations a step)"],
    ["euler-maruyama", "Euler-Maruyama SDE (SiT's SDE; best FID at 250 steps)"],
  ],
};

/** Offers the samplers of the loaded model's kind; keeps the choice when it fits, else the kind's first one. */
function showSamplers(arch: "dit" | "sit") {
  const prev = el.sampler.value;
  const list = SAMPLERS[arch] ?? SAMPLERS.dit;
  el.sampler.replaceChildren(...list.map(([value, text]) => Object.assign(document.createElement("option"), { value, textContent: text })));
  el.sampler.value = list.some(([v]) => v === prev) ? prev : arch === "dit" ? "ddim" : list[0][0];
}

/** Where `hf://` locations resolve: `?endpoint=` (a mirror, or a local server in tests), else the Hub. */
const hubEndpoint = params.get("endpoint") ?? undefined;

function showError(e: unknown) {
  const msg = e instanceof DitError ? `${e.name}: ${e.message}` : String((e as Error)?.message ?? e);
  const hint =
    e instanceof DitError && e.kind === "no-webgpu"
      ? "\nWebGPU is needed: try a recent Chrome or Edge, or enable WebGPU in your browser's settings."
      : e instanceof DitError && e.kind === "device-lost"
        ? "\nThe GPU was reset: press “Load model” to start again."
        : "";
  el.error.textContent = msg + hint;
  el.error.dataset.kind = e instanceof DitError ? e.kind : "unknown";
  el.error.hidden = false;
}

function clearError() {
  el.error.hidden = true;
  el.error.textContent = "";
}

function fmtBytes(n: number) {
  return n > 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

function modelUrls(): { model: string; vae?: string } {
  const choice = el.modelChoice.value;
  if (choice === "demo") return { model: "./demo/dit", vae: "./demo/vae" };
  if (choice in OFFICIAL) return { model: OFFICIAL[choice].location, vae: OFFICIAL[choice].vae };
  const model = el.modelUrl.value.trim();
  // A Hub pipeline brings its VAE; another location without one uses the embedded demo VAE.
  const vae = el.vaeUrl.value.trim() || (model.startsWith("hf://") ? undefined : "./demo/vae");
  return { model, vae };
}

/** Shows what the chosen model downloads, before it starts. */
function showSize() {
  const official = OFFICIAL[el.modelChoice.value];
  el.modelSize.textContent = official
    ? `Downloads about ${fmtBytes(official.bytes)} once (the transformer${official.vae ? "" : " without its duplicated embedders"}, and the ` +
      `VAE's decoder) and keeps ${fmtBytes(official.bytes / 2)} in this browser for the next visits.`
    : "";
}

function showNotice(text: string) {
  el.notice.textContent = text;
  el.notice.hidden = false;
  stats.notices.push(text);
}

function fillClasses(filter = "") {
  const f = filter.toLowerCase();
  const prev = el.classSelect.value;
  el.classSelect.replaceChildren();
  classNames.forEach((name, i) => {
    if (f && !name.toLowerCase().includes(f) && String(i) !== f) return;
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = `${i} · ${name}`;
    el.classSelect.append(o);
  });
  if ([...el.classSelect.options].some((o) => o.value === prev)) el.classSelect.value = prev;
  else if (el.classSelect.options.length) el.classSelect.selectedIndex = 0;
}

async function load() {
  clearError();
  sampler?.dispose();
  sampler = null;
  el.generate.disabled = true;
  const { model, vae } = modelUrls();
  if (!model) {
    showError(new DitError("invalid-input", "Enter an hf:// repo or the URL of a DiT (see the README)."));
    return;
  }
  el.notice.hidden = true;
  // A choice made on the page is shown on the next visit; one made by `?model=` is not.
  if (!params.get("model")) localStorage.setItem("dit-wasm:urls", JSON.stringify({ choice: el.modelChoice.value, model: el.modelUrl.value, vae: el.vaeUrl.value }));
  const t0 = performance.now();
  let fromCache = 0;
  let fetched = 0;
  const seen = new Set<string>();
  el.loadText.textContent = "Opening the GPU…";
  try {
    const maxBinding = params.get("maxBinding");
    sampler = await createSampler({
      model,
      ...(vae ? { vae } : {}),
      ...(hubEndpoint ? { hubEndpoint } : {}),
      ...(maxBinding ? { maxStorageBufferBindingSize: Number(maxBinding) } : {}),
      ...(params.get("timeout") ? { timeoutMs: Number(params.get("timeout")) } : {}),
      onProgress: (p: LoadProgress) => {
        if (p.notice) showNotice(p.notice);
        if (p.phase === "download" && p.loaded !== undefined) {
          if (p.file && !seen.has(p.file) && p.loaded !== undefined && p.total !== undefined) {
            if (p.cached) {
              seen.add(p.file);
              fromCache++;
              stats.cached++;
            } else if (p.loaded > 0) {
              seen.add(p.file);
              fetched++;
              stats.downloaded++;
            }
          }
          const loaded = p.loaded ?? 0;
          const total = p.total ?? 0;
          const secs = (performance.now() - t0) / 1000;
          const rate = loaded / Math.max(secs, 1e-3);
          const eta = rate > 0 && total > loaded ? `${Math.ceil((total - loaded) / rate)} s left` : "";
          el.loadProgress.max = Math.max(total, 1);
          el.loadProgress.value = loaded;
          el.loadText.textContent = `${p.cached ? "From cache" : "Downloading"} ${p.file ?? ""}: ${fmtBytes(loaded)} of ${fmtBytes(total)}, ${fmtBytes(rate)}/s ${eta}`;
        } else if (p.phase === "compile") {
          el.loadText.textContent = "Uploading to the GPU and compiling shaders…";
        }
      },
    });
  } catch (e) {
    el.loadText.textContent = "";
    showError(e);
    return;
  }
  const info = sampler.info;
  const a = info.adapter;
  el.adapter.textContent =
    `GPU: ${a.name || "WebGPU adapter"} (${a.backend}); fp16 weights read ${a.shader_f16 ? "with shader-f16" : "as packed integers (no shader-f16 here: works, somewhat slower)"}.`;
  classNames = info.model.classNames ?? (info.model.numClasses === 1000 ? imagenetClasses : [...Array(info.model.numClasses).keys()].map(String));
  fillClasses(el.classSearch.value);
  showSamplers(info.model.arch);
  el.cacheState.textContent = fetched === 0 && fromCache > 0 ? "Weights came from the cache (nothing downloaded)." : `Downloaded ${fetched} file(s); kept for the next visit.`;
  el.loadText.textContent = `Ready: ${info.model.preset ?? "model"} (${(info.model.parameters / 1e6).toFixed(1)}M parameters, ${fmtBytes(info.model.bytes)}), ${info.model.imageSize}×${info.model.imageSize} images, in ${((performance.now() - t0) / 1000).toFixed(1)} s.`;
  el.loadProgress.value = el.loadProgress.max;
  el.generate.disabled = false;
}

function drawRgba(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray, w: number, h: number) {
  canvas.width = w;
  canvas.height = h;
  const image = new ImageData(new Uint8ClampedArray(rgba), w, h);
  const draw = () => canvas.getContext("2d")!.putImageData(image, 0, 0);
  draw();
  // A GPU loss wipes the canvas (the browser restores an empty one): draw the image again.
  canvas.oncontextrestored = draw;
}

function addResults(r: GenerateResult, settings: Record<string, unknown>, labels: number[]) {
  r.images.forEach((rgba, i) => {
    const fig = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.dataset.testid = "result";
    canvas.setAttribute("data-testid", "result");
    drawRgba(canvas, rgba, r.width, r.height);
    const s = { ...settings, class: labels[i], className: classNames[labels[i]], image: i };
    canvas.setAttribute("aria-label", `Generated ${classNames[labels[i]] ?? labels[i]}`);
    const cap = document.createElement("figcaption");
    cap.textContent = JSON.stringify(s);
    const a = document.createElement("a");
    a.textContent = "Download PNG";
    a.download = `dit-${labels[i]}-seed${settings.seed}-${i}.png`;
    a.href = canvas.toDataURL("image/png");
    fig.append(canvas, cap, a);
    el.gallery.prepend(fig);
  });
}

async function generate() {
  if (!sampler) return;
  clearError();
  const label = Number(el.classSelect.value);
  const count = Math.max(1, Math.min(16, Number(el.count.value) || 1));
  const labels = Array(count).fill(label);
  const steps = Number(el.steps.value);
  const settings = {
    cfgScale: Number(el.cfg.value),
    steps,
    sampler: el.sampler.value as GenerateOptions["sampler"],
    cfgChannels: el.cfgChannels.value as "official" | "all",
    seed: Number(el.seed.value),
  };
  running = new AbortController();
  el.generate.disabled = true;
  el.cancel.disabled = false;
  el.progress.value = 0;
  el.progress.max = steps;
  el.progressText.textContent = "Starting…";
  try {
    const r = await sampler.generate({
      classLabels: labels,
      ...settings,
      signal: running.signal,
      previewEvery: Math.max(1, Math.round(steps / 10)),
      onStep: (s) => {
        el.progress.max = s.total;
        el.progress.value = s.step;
        const ms = (s.elapsed * 1000) / s.step;
        const eta = ((s.total - s.step) * ms) / 1000;
        el.progressText.textContent = `step ${s.step}/${s.total} · ${ms.toFixed(0)} ms/step · ETA ${eta.toFixed(1)} s`;
        if (s.preview) drawRgba(el.preview, s.preview.images[0], s.preview.width, s.preview.height);
      },
    });
    stats.generated += r.images.length;
    stats.gpuMemory = r.gpuMemory;
    addResults(r, settings, labels);
  } catch (e) {
    if (e instanceof DitError && e.kind === "aborted") el.progressText.textContent = "Cancelled.";
    else showError(e);
    if (e instanceof DitError && e.kind === "device-lost") sampler = null;
  } finally {
    running = null;
    el.generate.disabled = !sampler;
    el.cancel.disabled = true;
  }
}

// Wiring.
el.modelChoice.addEventListener("change", () => {
  el.urlFields.hidden = el.modelChoice.value !== "url";
  showSize();
});
el.load.addEventListener("click", load);
el.clearCache.addEventListener("click", async () => {
  const removed = await clearCache();
  el.cacheState.textContent = removed ? "Cached weights removed." : "Nothing was cached.";
});
el.classSearch.addEventListener("input", () => fillClasses(el.classSearch.value));
el.dice.addEventListener("click", () => {
  el.seed.value = String(Math.floor(Math.random() * 2 ** 31));
});
el.generate.addEventListener("click", generate);
el.cancel.addEventListener("click", () => running?.abort());

// `?model=<location>` (and `?vae=`) preselects a model and loads it on open; else the last choice is shown, and the
// demo loads on open.
const asked = params.get("model");
const saved = JSON.parse(localStorage.getItem("dit-wasm:urls") ?? "null");
if (asked) {
  const official = Object.keys(OFFICIAL).find((k) => OFFICIAL[k].location === asked);
  el.modelChoice.value = official ?? "url";
  if (!official) {
    el.modelUrl.value = asked;
    el.vaeUrl.value = params.get("vae") ?? "";
  }
} else if (saved && [...el.modelChoice.options].some((o) => o.value === saved.choice)) {
  el.modelChoice.value = saved.choice;
  el.modelUrl.value = saved.model ?? "";
  el.vaeUrl.value = saved.vae ?? "";
}
el.urlFields.hidden = el.modelChoice.value !== "url";
showSize();
if (!("gpu" in navigator)) {
  el.adapter.textContent = "This browser has no WebGPU.";
  showError(new DitError("no-webgpu", "This browser has no WebGPU (navigator.gpu is missing)."));
} else if (asked || el.modelChoice.value === "demo") {
  load();
}

// The page's own files are kept by a service worker (src/sw.ts) so that a visit without a network opens it; not in
// the dev server, which has no sw.js (the registration then fails, quietly).
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("./sw.js").catch((e) => console.warn("no offline copy of the page:", e));
}
