// The models the page offers besides the embedded demo, what each downloads, and the samplers of each model kind.

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
 * the paper's (S 33M, B 130M, L 458M, XL 675M), read in f32 (4 bytes each), plus the VAE decoder's. The heads are
 * the paper's too (S 6, B 12, L and XL 16); the loader would infer them from the widths, and naming them lets a file
 * of another width load under the preset (the test's tiny SiT in the release's layout).
 */
const SD_VAE_FT_EMA = `hf://stabilityai/sd-vae-ft-ema@${OFFICIAL_REVISION}`;

/** How a model samples by default on the page (the controls are set to these when it loads). */
export interface SamplingDefaults {
  steps: number;
  cfgScale: number;
  /** A page sampler choice (`SAMPLERS`). */
  sampler: string;
  /** A flow map's grid, when not the uniform one; it applies while the steps are its length. */
  grid?: number[];
  /** A flow map's time shift (DMF at 512 px). */
  shift?: number;
}

/** A model the page offers: its location (with a VAE when it brings none), what a first visit downloads, its licence. */
export interface Preset {
  location: string;
  vae?: string;
  bytes: number;
  /** Shown before any download, with where it is stated. */
  licence: string;
  defaults?: SamplingDefaults;
}

const DIT_LICENCE = "CC BY-NC 4.0, non-commercial (facebookresearch/DiT: “The code and model weights are licensed under CC-BY-NC”)";
const SIT_LICENCE = "MIT (the SiT release, willisma/SiT)";
const SNAP_LICENCE = "Snap Inc. non-commercial licence: research use only (snap-research/alphaflow, code and weights)";
const DMF_LICENCE =
  "not stated upstream: the code (kyungmnlee/dmf) has no LICENSE file and the weights' terms are unconfirmed; ask the authors before any use beyond research";

const sit = (size: string, parameters: number, heads: number): Preset => ({
  location: `hf://nyu-visionx/SiT-collections@${OFFICIAL_REVISION}/SiT-${size}-2-256.pt#arch=sit&heads=${heads}`,
  vae: SD_VAE_FT_EMA,
  bytes: (parameters + VAE_DECODER_PARAMETERS) * 4,
  licence: SIT_LICENCE,
});

/**
 * The flow maps (MeanFlow / α-Flow and Decoupled MeanFlow): DiT-XL/2's blocks trained to jump along the path, guidance
 * trained in, so one to four calls make an image. Each is one torch.save'd file read in place by ranges: α-Flow's
 * training snapshots (the network under `model.` in their `ema` dict, with the latent statistics; the whole SD VAE
 * they also hold is not read) and DMF's state dicts, whose split (`dmf-depth` 20) is not in the file. Both decode with
 * sd-vae-ft-ema. Bytes: DiT-XL/2's 674.8M parameters (MeanFlow's second timestep embedder adds 1.6M) in f32, plus the VAE
 * decoder's.
 */
const XL_PARAMETERS = 674_834_720;
const MEANFLOW_EXTRA = 256 * 1152 + 1152 + 1152 * 1152 + 1152;
const alphaflow = (file: string, defaults: SamplingDefaults): Preset => ({
  location: `hf://snap-research/alphaflow@${OFFICIAL_REVISION}/${file}#arch=meanflow&heads=16`,
  vae: SD_VAE_FT_EMA,
  bytes: (XL_PARAMETERS + MEANFLOW_EXTRA + VAE_DECODER_PARAMETERS) * 4,
  licence: SNAP_LICENCE,
  defaults,
});
const dmf = (res: number, defaults: SamplingDefaults): Preset => ({
  location: `hf://kyungmnlee/DMF@${OFFICIAL_REVISION}/dmf_xl_2_${res}.pt#arch=dmf&dmf-depth=20&heads=16`,
  vae: SD_VAE_FT_EMA,
  bytes: (XL_PARAMETERS + VAE_DECODER_PARAMETERS) * 4,
  licence: DMF_LICENCE,
  defaults,
});

/** The models the choice offers besides the demos: Hub locations and what they download. */
export const OFFICIAL: Record<string, Preset> = {
  "hf-256": { location: `hf://facebook/DiT-XL-2-256@${OFFICIAL_REVISION}`, bytes: OFFICIAL_DOWNLOAD_BYTES, licence: DIT_LICENCE },
  "hf-512": { location: `hf://facebook/DiT-XL-2-512@${OFFICIAL_REVISION}`, bytes: OFFICIAL_DOWNLOAD_BYTES, licence: DIT_LICENCE },
  "sit-s": sit("S", 33e6, 6),
  "sit-b": sit("B", 130e6, 12),
  "sit-l": sit("L", 458e6, 16),
  "sit-xl": sit("XL", 675e6, 16),
  // DMF: 1 step FID 2.16, 4 steps 1.51 (256 px); 512 px samples with a time shift of 1.5.
  "dmf-256": dmf(256, { steps: 1, cfgScale: 1, sampler: "flowmap" }),
  "dmf-512": dmf(512, { steps: 1, cfgScale: 1, sampler: "flowmap", shift: 1.5 }),
  // MeanFlow-XL/2: 2 plain steps over [1, 0.5, 0] (FID 2.46); α-Flow: 2 consistency steps over [1, 0.55, 0] (2.34),
  // α-Flow+ over [1, 0.5, 0] (2.15).
  "meanflow-xl": alphaflow("meanflow-XL-2-cfg.pt", { steps: 2, cfgScale: 1, sampler: "flowmap" }),
  "alphaflow-xl": alphaflow("alphaflow-XL-2-cfg.pt", { steps: 2, cfgScale: 1, sampler: "flowmap-consistency", grid: [1, 0.55, 0] }),
  "alphaflow-xl-plus": alphaflow("alphaflow-XL-2-plus-cfg.pt", { steps: 2, cfgScale: 1, sampler: "flowmap-consistency" }),
};

/** The embedded demo VAE (repo/models/demo/vae, served beside the page), which both demo networks decode with. */
const DEMO_VAE = "./demo/vae";

/**
 * The embedded demo models (repo/models/demo, served beside the page), the first the page opens with: a flow map
 * distilled from the DiT demo (one network call an image), and the DiT demo itself (50 guided DDIM steps).
 */
export const DEMOS: Record<string, { model: string; vae: string; defaults: SamplingDefaults; about: string }> = {
  "demo-flow": {
    model: "./demo/flowmap",
    vae: DEMO_VAE,
    defaults: { steps: 1, cfgScale: 1, sampler: "flowmap" },
    about: "Ten Fashion-MNIST classes at 32×32 px in one network call (a MeanFlow flow map distilled from the DiT demo); embedded, so nothing to download.",
  },
  demo: {
    model: "./demo/dit",
    vae: DEMO_VAE,
    defaults: { steps: 50, cfgScale: 4, sampler: "ddim" },
    about: "Ten Fashion-MNIST classes at 32×32 px (a DiT: 50 guided DDIM steps); embedded, so nothing to download.",
  },
};

/** The embedded DiT demo (a link's `model=demo`), and the VAE of a location that names none. */
export const DEMO = DEMOS.demo;

/** Model families: "dit" a diffusion, "sit" a flow, "meanflow" and "dmf" flow maps. */
export type Arch = "dit" | "sit" | "meanflow" | "dmf";

export const isFlowMap = (arch: Arch) => arch === "meanflow" || arch === "dmf";

/** The largest step count the page offers a flow map (one to a few calls are what it is made for). */
export const FLOW_MAP_MAX_STEPS = 8;

/** Each family's sampling when its model has no preset defaults. */
export const FAMILY_DEFAULTS: Record<Arch, SamplingDefaults> = {
  dit: { steps: 50, cfgScale: 4, sampler: "ddim" },
  sit: { steps: 50, cfgScale: 4, sampler: "euler" },
  meanflow: { steps: 1, cfgScale: 1, sampler: "flowmap" },
  dmf: { steps: 1, cfgScale: 1, sampler: "flowmap" },
};

const FLOW_MAP_SAMPLERS: [string, string][] = [
  ["flowmap", "Flow map: one network call jumps to the next time"],
  ["flowmap-consistency", "Flow map, consistency steps (α-Flow: jump to the image, add fresh noise back)"],
];

/**
 * The sampler choices of each model kind: a DiT is a diffusion, a SiT a flow, MeanFlow and DMF flow maps (the other
 * kinds' samplers refuse a model). `flowmap-consistency` is the package's `flowmap` with `consistency: true`.
 */
export const SAMPLERS: Record<Arch, [string, string][]> = {
  dit: [
    ["ddpm", "DDPM (learned variance, as in the paper; use 250 steps)"],
    ["ddim", "DDIM"],
    ["dpmpp2m", "DPM-Solver++(2M) (good at 20 steps)"],
  ],
  sit: [
    ["euler", "Euler ODE (SiT's flow; 50 steps or more)"],
    ["heun", "Heun ODE (two evaluations a step)"],
    ["euler-maruyama", "Euler-Maruyama SDE (SiT's SDE; best FID at 250 steps)"],
    ["dopri5", "dopri5 ODE (SiT's default: adaptive steps; the step count is its own)"],
  ],
  meanflow: FLOW_MAP_SAMPLERS,
  dmf: FLOW_MAP_SAMPLERS,
};

export function fmtBytes(n: number) {
  return n > 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}
