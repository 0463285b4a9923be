// The page's controls: its elements, the error line, and the model choice (what a link names, what loads, what
// it downloads) and the sampler choices of the loaded model's kind.
import { DitError } from "dit-wasm";
import { type Arch, DEMO, DEMOS, FAMILY_DEFAULTS, FLOW_MAP_MAX_STEPS, fmtBytes, isFlowMap, OFFICIAL, SAMPLERS } from "./models";

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
export const el = {
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
  randomClass: $<HTMLButtonElement>("random-class"),
  cfg: $<HTMLInputElement>("cfg"),
  cfgHint: $("cfg-hint"),
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
  sweepKind: $<HTMLSelectElement>("sweep-kind"),
  sweepValues: $<HTMLInputElement>("sweep-values"),
  sweep: $<HTMLButtonElement>("sweep"),
  blend: $<HTMLButtonElement>("blend"),
  pngInput: $<HTMLInputElement>("png-input"),
  pngState: $("png-state"),
  error: $("error"),
  gallery: $("gallery"),
  empty: $("empty"),
};

/**
 * Offers the samplers of the loaded model's kind (keeps the choice when it fits, else the kind's default) and the
 * controls that fit it: a flow map takes 1 to 8 steps, has its guidance trained in and guides every channel.
 */
export function showSamplers(arch: Arch) {
  const prev = el.sampler.value;
  const list = SAMPLERS[arch] ?? SAMPLERS.dit;
  el.sampler.replaceChildren(...list.map(([value, text]) => Object.assign(document.createElement("option"), { value, textContent: text })));
  el.sampler.value = list.some(([v]) => v === prev) ? prev : (FAMILY_DEFAULTS[arch] ?? FAMILY_DEFAULTS.dit).sampler;
  const flowMap = isFlowMap(arch);
  el.steps.max = String(flowMap ? FLOW_MAP_MAX_STEPS : 1000);
  el.cfgChannels.disabled = flowMap;
  el.cfgHint.hidden = !flowMap;
  el.cfgHint.textContent = flowMap
    ? "Guidance is trained into this model: 1 gives its own guided images. Above 1 guides again, on all channels, at the times it was trained to guide."
    : "";
}

export function showError(e: unknown) {
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

export function clearError() {
  el.error.hidden = true;
  el.error.textContent = "";
}

/** The model choice as a link names it: the choice for the demo and the presets, else the locations typed. */
export function chosenModel(): { model: string; vae?: string } {
  const choice = el.modelChoice.value;
  if (choice !== "url") return { model: choice };
  const vae = el.vaeUrl.value.trim();
  return { model: el.modelUrl.value.trim(), ...(vae ? { vae } : {}) };
}

export function modelUrls(): { model: string; vae?: string } {
  const choice = el.modelChoice.value;
  if (choice in DEMOS) return { model: DEMOS[choice].model, vae: DEMOS[choice].vae };
  if (choice in OFFICIAL) return { model: OFFICIAL[choice].location, vae: OFFICIAL[choice].vae };
  const model = el.modelUrl.value.trim();
  // A Hub pipeline brings its VAE; another location without one uses the embedded demo VAE.
  const vae = el.vaeUrl.value.trim() || (model.startsWith("hf://") ? undefined : DEMO.vae);
  return { model, vae };
}

/** Sets the model choice from a link's or a PNG's `model` (a choice, a preset's location, or another location). */
export function chooseModel(model: string, vae?: string) {
  const official = Object.keys(OFFICIAL).find((k) => OFFICIAL[k].location === model);
  const choice = model in DEMOS || model in OFFICIAL ? model : (official ?? "url");
  el.modelChoice.value = choice;
  if (choice === "url") {
    el.modelUrl.value = model;
    el.vaeUrl.value = vae ?? "";
  }
  el.urlFields.hidden = choice !== "url";
  showSize();
}

/** Shows what the chosen model downloads and its licence, before anything is downloaded. */
export function showSize() {
  const official = OFFICIAL[el.modelChoice.value];
  el.modelSize.textContent = official
    ? `Downloads about ${fmtBytes(official.bytes)} once (the transformer${official.vae ? "" : " without its duplicated embedders"}, and the ` +
      `VAE's decoder) and keeps ${fmtBytes(official.bytes / 2)} in this browser for the next visits. Licence: ${official.licence}.`
    : (DEMOS[el.modelChoice.value]?.about ?? "");
}
