// The page: loads a model with the `dit-wasm` package (the embedded demo by default), generates images, sweeps a
// setting over one seed, blends two classes (explore.ts), and reproduces a result from its link or its PNG
// (settings.ts, png.ts). The controls are in controls.ts, the class search in classes.ts, the results in gallery.ts.
import { clearCache, createSampler, DitError, type AdapterInfo, type CreateSamplerOptions, type Sampler, type LoadProgress, type GenerateOptions, type GenerateResult } from "dit-wasm";
import { ClassPicker } from "./classes";
import { $, chooseModel, chosenModel, clearError, el, modelUrls, showError, showSamplers, showSize } from "./controls";
import { browserAdapter, deviceName, type BrowserAdapter } from "./device";
import { blend, sweep, sweepValues, type SweepKind } from "./explore";
import { drawRgba, resultFigure, type Picture } from "./gallery";
import { type Arch, DEMOS, FAMILY_DEFAULTS, fmtBytes, isFlowMap, OFFICIAL, type SamplingDefaults } from "./models";
import { readText } from "./png";
import { fromPngText, fromQuery, toQuery, type Channels, type Settings } from "./settings";
import imagenetClasses from "./imagenet-classes.json";
// ImageNet's class names with their WordNet synonyms ("tabby, tabby cat"), in class order, as the labels list of the
// npm package @tensorflow-models/mobilenet (Apache-2.0) has them; searched, not shown.
import imagenetSynonyms from "./imagenet-synonyms.json";

/** Counters for automation: how many weight files came from the network and from Cache Storage. */
const stats = {
  downloaded: 0,
  cached: 0,
  generated: 0,
  notices: [] as string[],
  /** The GPU memory the sampler held after the last generation. */
  gpuMemory: null as GenerateResult["gpuMemory"] | null,
  /** The loaded sampler's adapter report (its limits as the device was opened). */
  adapter: null as AdapterInfo | null,
};
(window as unknown as { __ditStats: typeof stats }).__ditStats = stats;

// The script runs: the line that says it could not be loaded (index.html) goes.
el.adapter.textContent = "Looking for WebGPU…";

const classes = new ClassPicker($("class-input"), $("class-list"));
const blendWith = new ClassPicker($("blend-input"), $("blend-list"));

let sampler: Sampler | null = null;
let running: AbortController | null = null;
/** What the loaded model was loaded from (the choice, or the location), for the links of its results. */
let loadedModel: { model: string; vae?: string } | null = null;
/** The family the controls are set for (the page opens with a DiT's: 50 DDIM steps at guidance 4). */
let shownArch: Arch = "dit";
/** A flow map's grid (used while the steps are its length) and time shift: the preset's, or a link's. */
let flowGrid: number[] | undefined;
let flowShift: number | undefined;

const params = new URLSearchParams(location.search);
/** Parameters of the page kept in result links: where hf:// resolves (a mirror, or the stand-in Hub of a test). */
const KEPT = ["endpoint"];
const kept = Object.fromEntries(KEPT.filter((k) => params.has(k)).map((k) => [k, params.get(k)!]));

/** Where `hf://` locations resolve: `?endpoint=` (a mirror, or a local server in tests), else the Hub. */
const hubEndpoint = params.get("endpoint") ?? undefined;

function showNotice(text: string) {
  el.notice.textContent = text;
  el.notice.hidden = false;
  stats.notices.push(text);
}

function setBusy(busy: boolean) {
  const off = busy || !sampler;
  el.generate.disabled = off;
  el.sweep.disabled = off;
  el.blend.disabled = off;
  el.cancel.disabled = !busy;
}

async function load(): Promise<boolean> {
  clearError();
  sampler?.dispose();
  sampler = null;
  loadedModel = null;
  setBusy(false);
  const { model, vae } = modelUrls();
  if (!model) {
    showError(new DitError("invalid-input", "Enter an hf:// repo or the URL of a DiT (see the README)."));
    return false;
  }
  el.notice.hidden = true;
  // A choice made on the page is shown on the next visit; one made by a link is not.
  if (!params.get("model")) localStorage.setItem("dit-wasm:urls", JSON.stringify({ choice: el.modelChoice.value, model: el.modelUrl.value, vae: el.vaeUrl.value }));
  const chosen = chosenModel();
  const t0 = performance.now();
  let fromCache = 0;
  let fetched = 0;
  const seen = new Set<string>();
  el.loadText.textContent = "Opening the GPU…";
  el.loadProgress.hidden = false;
  try {
    const maxBinding = params.get("maxBinding");
    // `?limits=default`: a device with WebGPU's default limits only, as Safari and many phones give.
    const limits = params.get("limits") as CreateSamplerOptions["limits"] | null;
    sampler = await createSampler({
      model,
      ...(vae ? { vae } : {}),
      ...(hubEndpoint ? { hubEndpoint } : {}),
      ...(maxBinding ? { maxStorageBufferBindingSize: Number(maxBinding) } : {}),
      ...(limits ? { limits } : {}),
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
        } else if (p.phase === "ready" && p.recovering) {
          // The package reloaded the model after a GPU loss (the notice says so): the model is ready again.
          el.loadText.textContent = "Ready again: the model was reloaded from the cache after the GPU was lost.";
          el.loadProgress.hidden = true;
        }
      },
    });
  } catch (e) {
    el.loadText.textContent = "";
    el.loadProgress.hidden = true;
    showError(e);
    return false;
  }
  const info = sampler.info;
  const a = info.adapter;
  stats.adapter = a;
  // Named at once from the package's report, then from what the browser says (the load does not wait for it).
  const gpuLine = (said: BrowserAdapter | null) => `GPU: ${deviceName(said, a, navigator.userAgent)}${a.shader_f16 ? "" : ", fp16 read as packed integers"}`;
  el.adapter.textContent = gpuLine(null);
  const named = sampler;
  browserAdapter().then((said) => {
    if (said && sampler === named) el.adapter.textContent = gpuLine(said);
  });
  el.adapter.title = `${a.backend}; fp16 weights read ${a.shader_f16 ? "with shader-f16" : "as packed integers (no shader-f16 here: works, somewhat slower)"}`;
  const imagenet = info.model.numClasses === 1000 && !info.model.classNames;
  const names = info.model.classNames ?? (imagenet ? imagenetClasses : [...Array(info.model.numClasses).keys()].map(String));
  classes.setClasses(names, imagenet ? imagenetSynonyms : undefined);
  blendWith.setClasses(names, imagenet ? imagenetSynonyms : undefined);
  if (blendWith.value === classes.value && names.length > 1) blendWith.set((classes.value + 1) % names.length);
  showSamplers(info.model.arch);
  // A model of another family, or a preset with sampling of its own: the controls take its defaults.
  const preset = OFFICIAL[chosen.model]?.defaults ?? DEMOS[chosen.model]?.defaults;
  if (preset || info.model.arch !== shownArch) applyDefaults(preset ?? FAMILY_DEFAULTS[info.model.arch]);
  shownArch = info.model.arch;
  el.cacheState.textContent = fetched === 0 && fromCache > 0 ? "Weights came from the cache (nothing downloaded)." : `Downloaded ${fetched} file(s); kept for the next visit.`;
  el.loadText.textContent = `Ready: ${info.model.preset ?? "model"} (${(info.model.parameters / 1e6).toFixed(1)}M parameters, ${fmtBytes(info.model.bytes)}), ${info.model.imageSize}×${info.model.imageSize} images, in ${((performance.now() - t0) / 1000).toFixed(1)} s.`;
  // For the load benchmark (tools/bench/load.mjs): the pipelines this load compiled.
  el.loadText.dataset.pipelines = String(info.pipelines.count);
  el.loadProgress.hidden = true;
  loadedModel = chosen;
  setBusy(false);
  if (pending && isLoaded(pending.settings)) applyPending();
  return true;
}

/** Sets the sampling controls to a model's defaults. */
function applyDefaults(d: SamplingDefaults) {
  el.steps.value = String(d.steps);
  el.cfg.value = String(d.cfgScale);
  if ([...el.sampler.options].some((o) => o.value === d.sampler)) el.sampler.value = d.sampler;
  flowGrid = d.grid;
  flowShift = d.shift;
}

/** The controls' settings (the class from the picker); `loadedModel` names the model. */
function current(): Settings {
  const steps = Math.max(1, Math.trunc(Number(el.steps.value) || 1));
  const flowMap = isFlowMap(shownArch);
  return {
    ...(loadedModel ?? chosenModel()),
    classLabel: classes.value,
    seed: Math.max(0, Math.trunc(Number(el.seed.value) || 0)),
    cfgScale: Number(el.cfg.value) || 1,
    steps,
    sampler: el.sampler.value,
    cfgChannels: el.cfgChannels.value as Channels,
    ...(flowMap && flowGrid && flowGrid.length === steps + 1 ? { grid: flowGrid } : {}),
    ...(flowMap && flowShift !== undefined && flowShift !== 1 ? { shift: flowShift } : {}),
  };
}

const linkOf = (s: Settings) => `${location.pathname}${toQuery(s, kept)}`;

function picture(s: Settings, r: GenerateResult, i: number): Picture {
  const title = s.blend ? `${classes.name(s.classLabel)} → ${classes.name(s.blend.with)}` : classes.name(s.classLabel);
  return { rgba: r.images[i], width: r.width, height: r.height, settings: s, title, link: linkOf(s) };
}

function addToGallery(node: HTMLElement) {
  el.empty.remove();
  el.gallery.prepend(node);
}

/**
 * Runs `s` (count images of the class, or one blended) and returns the result; the progress shows `what`. Throws the
 * package's errors (the caller's `run` shows them).
 */
async function sample(s: Settings, count: number, signal: AbortSignal, what = ""): Promise<GenerateResult> {
  el.progress.value = 0;
  el.progress.max = s.steps;
  el.progressText.textContent = `${what}Starting…`;
  // The page's "flowmap-consistency" is the package's flow-map sampler with consistency steps.
  const consistency = s.sampler === "flowmap-consistency";
  const options: GenerateOptions = {
    classLabels: Array(count).fill(s.classLabel),
    cfgScale: s.cfgScale,
    steps: s.steps,
    sampler: (consistency ? "flowmap" : s.sampler) as GenerateOptions["sampler"],
    cfgChannels: s.cfgChannels,
    ...(consistency ? { consistency } : {}),
    ...(s.grid ? { grid: s.grid } : {}),
    ...(s.shift !== undefined ? { shift: s.shift } : {}),
    seed: s.seed,
    signal,
    previewEvery: Math.max(1, Math.round(s.steps / 10)),
    onStep: (ev) => {
      el.progress.max = ev.total;
      el.progress.value = ev.step;
      const ms = (ev.elapsed * 1000) / ev.step;
      const eta = ((ev.total - ev.step) * ms) / 1000;
      el.progressText.textContent = `${what}step ${ev.step}/${ev.total} · ${ms.toFixed(0)} ms/step · ETA ${eta.toFixed(1)} s`;
      if (ev.preview) {
        drawRgba(el.preview, ev.preview.images[0], ev.preview.width, ev.preview.height);
        el.preview.hidden = false;
      }
    },
    ...(s.blend ? { blend: s.blend } : {}),
  };
  const r = await sampler!.generate(options);
  stats.generated += r.images.length;
  stats.gpuMemory = r.gpuMemory;
  return r;
}

/** Runs `job` with the controls busy, Cancel live, and its errors shown. */
async function run(job: (signal: AbortSignal) => Promise<void>) {
  if (!sampler || running) return;
  clearError();
  running = new AbortController();
  setBusy(true);
  try {
    await job(running.signal);
  } catch (e) {
    if (e instanceof DitError && e.kind === "aborted") el.progressText.textContent = "Cancelled.";
    else showError(e);
    if (e instanceof DitError && e.kind === "device-lost") sampler = null;
  } finally {
    running = null;
    setBusy(false);
  }
}

/** Generates the controls' settings (a batch of `count`), or `only` (a link's or a batch's image). */
function generate(only?: Settings) {
  return run(async (signal) => {
    const s = only ?? current();
    const count = only?.batch?.count ?? Math.max(1, Math.min(16, Math.trunc(Number(el.count.value)) || 1));
    const r = await sample({ ...s, batch: undefined }, count, signal);
    // Batch images oldest first, so that image 1 ends up on top.
    for (let i = r.images.length - 1; i >= 0; i--) {
      const si = count > 1 ? { ...s, batch: { count, index: i } } : { ...s, batch: undefined };
      if (!only?.blend) delete si.blend;
      addToGallery(resultFigure(picture(si, r, i)));
    }
  });
}

/** One picture of `s` for a sweep's or a blend's cell. */
const render = (signal: AbortSignal) => async (s: Settings, what: string) => picture(s, await sample(s, 1, signal, what), 0);

function runSweep() {
  return run(async (signal) => {
    const kind = el.sweepKind.value as SweepKind;
    const values = sweepValues(el.sweepValues.value, kind);
    addToGallery(await sweep(current(), kind, values, render(signal), (c) => classes.name(c)));
    el.progressText.textContent = `Done: a sweep of ${values.length}.`;
  });
}

function runBlend() {
  return run(async (signal) => {
    addToGallery(await blend(current(), blendWith.value, render(signal), (c) => classes.name(c)));
    el.progressText.textContent = "Done: a blend.";
  });
}

/** Sets the controls to `s` (once the model is loaded); throws when the model has no such class or sampler. */
function applySettings(s: Partial<Settings>) {
  for (const c of [s.classLabel, s.blend?.with]) {
    if (c !== undefined && !(Number.isInteger(c) && c >= 0 && c < classes.count))
      throw new DitError("invalid-input", `Class ${c} is not one of this model's (0 to ${classes.count - 1}): pick another class.`);
  }
  const samplers = [...el.sampler.options].map((o) => o.value);
  if (s.sampler && !samplers.includes(s.sampler))
    throw new DitError("invalid-input", `The sampler “${s.sampler}” is not one of this model's (${samplers.join(", ")}): pick another sampler.`);
  if (s.classLabel !== undefined) classes.set(s.classLabel);
  if (s.seed !== undefined) el.seed.value = String(s.seed);
  if (s.cfgScale !== undefined) el.cfg.value = String(s.cfgScale);
  if (s.steps !== undefined) el.steps.value = String(s.steps);
  if (s.cfgChannels) el.cfgChannels.value = s.cfgChannels;
  if (s.sampler) el.sampler.value = s.sampler;
  if (s.grid) flowGrid = s.grid;
  if (s.shift !== undefined) flowShift = s.shift;
  if (s.blend) blendWith.set(s.blend.with);
  el.count.value = String(s.batch?.count ?? 1);
}

/** Whether `s` names the model that is loaded now. */
function isLoaded(s: Partial<Settings>) {
  return !!sampler && !!loadedModel && (!s.model || (s.model === loadedModel.model && (s.vae ?? "") === (loadedModel.vae ?? "")));
}

/** A PNG's settings waiting for its model, which the visitor loads (it may be gigabytes): set once it is loaded. */
let pending: { settings: Partial<Settings>; file: string } | null = null;

function applyPending() {
  if (!pending) return;
  const { settings, file } = pending;
  pending = null;
  try {
    applySettings(settings);
    el.pngState.textContent = `Settings of ${file} set: press Generate to make it again.`;
  } catch (e) {
    el.pngState.textContent = "";
    showError(e);
  }
}

/**
 * Sets the controls from a PNG made here (its `parameters` chunk). Made with another model: the embedded demo loads at
 * once; another model is chosen and its settings wait until the visitor loads it.
 */
async function openPng(file: File) {
  try {
    const text = readText(new Uint8Array(await file.arrayBuffer()), "parameters");
    if (text === null) throw new Error("it has no `parameters` text chunk (not a picture from this page)");
    const s = fromPngText(text);
    pending = { settings: s, file: file.name };
    if (!isLoaded(s) && s.model) {
      chooseModel(s.model, s.vae);
      if (!(s.model in DEMOS)) {
        el.pngState.textContent = `${file.name} was made with another model: press “Load model”, and its settings will be set.`;
        return;
      }
      el.pngState.textContent = `Loading the model of ${file.name}…`;
      if (!(await load())) return;
    }
    applyPending();
  } catch (e) {
    el.pngState.textContent = "";
    if (e instanceof DitError) showError(e);
    else showError(new DitError("invalid-input", `${file.name} cannot be read back: ${(e as Error).message}. Open a PNG downloaded from this page.`));
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
el.randomClass.addEventListener("click", () => classes.set(Math.floor(Math.random() * Math.max(1, classes.count))));
el.dice.addEventListener("click", () => {
  el.seed.value = String(Math.floor(Math.random() * 2 ** 31));
});
el.generate.addEventListener("click", () => generate());
el.cancel.addEventListener("click", () => running?.abort());
el.sweep.addEventListener("click", runSweep);
el.blend.addEventListener("click", runBlend);
el.pngInput.addEventListener("change", () => {
  const f = el.pngInput.files?.[0];
  if (f) openPng(f);
  el.pngInput.value = "";
});
document.addEventListener("dragover", (e) => {
  if (!e.dataTransfer?.types.includes("Files")) return;
  e.preventDefault();
  document.body.classList.add("dropping");
});
document.addEventListener("dragleave", (e) => {
  if (!e.relatedTarget) document.body.classList.remove("dropping");
});
document.addEventListener("drop", (e) => {
  document.body.classList.remove("dropping");
  const f = e.dataTransfer?.files[0];
  if (!f) return;
  e.preventDefault();
  openPng(f);
});

// Enter generates (but not on a button, a link, the model's fields, or a list being picked from); Escape cancels.
document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.isComposing || e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target as HTMLElement;
  if (e.key === "Escape" && running) {
    running.abort();
    e.preventDefault();
  } else if (e.key === "Enter" && !t.closest("button, a, textarea, #url-fields, .explore") && !el.generate.disabled) {
    e.preventDefault();
    generate();
  }
});

// A result's link (`?model=…&class=…&seed=…`) sets everything and generates it again once the model is loaded.
// `?model=<location>` alone (and `?vae=`) preselects a model and loads it on open; else the last choice is shown, and
// the demo loads on open.
const asked = params.get("model");
const wanted = fromQuery(params);
const saved = JSON.parse(localStorage.getItem("dit-wasm:urls") ?? "null");
if (asked) chooseModel(asked, params.get("vae") ?? undefined);
else if (saved && [...el.modelChoice.options].some((o) => o.value === saved.choice)) {
  el.modelChoice.value = saved.choice;
  el.modelUrl.value = saved.model ?? "";
  el.vaeUrl.value = saved.vae ?? "";
}
el.urlFields.hidden = el.modelChoice.value !== "url";
showSize();
if (!("gpu" in navigator)) {
  el.adapter.textContent = "This browser has no WebGPU.";
  showError(new DitError("no-webgpu", "This browser has no WebGPU (navigator.gpu is missing)."));
} else if (asked || el.modelChoice.value in DEMOS) {
  load().then((ok) => {
    if (!ok || !wanted) return;
    try {
      applySettings(wanted);
    } catch (e) {
      return showError(e);
    }
    generate({ ...current(), ...(wanted.blend ? { blend: wanted.blend } : {}), ...(wanted.batch ? { batch: wanted.batch } : {}) });
  });
}

// The page's own files are kept by a service worker (src/sw.ts) so that a visit without a network opens it; not in
// the dev server, which has no sw.js (the registration then fails, quietly).
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("./sw.js").catch((e) => console.warn("no offline copy of the page:", e));
}
