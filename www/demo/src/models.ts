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
const SIT_VAE = `hf://stabilityai/sd-vae-ft-ema@${OFFICIAL_REVISION}`;
const sit = (size: string, parameters: number, heads: number) => ({
  location: `hf://nyu-visionx/SiT-collections@${OFFICIAL_REVISION}/SiT-${size}-2-256.pt#arch=sit&heads=${heads}`,
  vae: SIT_VAE,
  bytes: (parameters + VAE_DECODER_PARAMETERS) * 4,
});

/** The models the choice offers besides the demo: Hub locations (with a VAE when the model has none) and what they download. */
export const OFFICIAL: Record<string, { location: string; vae?: string; bytes: number }> = {
  "hf-256": { location: `hf://facebook/DiT-XL-2-256@${OFFICIAL_REVISION}`, bytes: OFFICIAL_DOWNLOAD_BYTES },
  "hf-512": { location: `hf://facebook/DiT-XL-2-512@${OFFICIAL_REVISION}`, bytes: OFFICIAL_DOWNLOAD_BYTES },
  "sit-s": sit("S", 33e6, 6),
  "sit-b": sit("B", 130e6, 12),
  "sit-l": sit("L", 458e6, 16),
  "sit-xl": sit("XL", 675e6, 16),
};

/** The embedded demo model (repo/models, served beside the page). */
export const DEMO = { model: "./demo/dit", vae: "./demo/vae" };

/** The sampler choices of each model kind: a DiT is a diffusion, a SiT a flow (the other kind's samplers refuse it). */
export const SAMPLERS: Record<"dit" | "sit", [string, string][]> = {
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
};

export function fmtBytes(n: number) {
  return n > 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}
