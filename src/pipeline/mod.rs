//! Class labels in, latents and images out: the sampling loop around the DiT forward and the GPU sampler step, then
//! the VAE decode. The loop uploads only the step's timesteps, scalars and (DDPM) noise; it reads nothing back until
//! the end, except for dopri5, whose adaptive steps are chosen on the host from each evaluation's velocity.

mod sampling;

pub use sampling::Sampling;

use crate::arch::{null_class, DitConfig, Family};
use crate::diffusion::{CfgChannels, SamplerKind, Spacing};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{Dit, Vae, VaePlan};
use crate::ops::LabelMix;

/// The release's sampling defaults, used by the CLI's arguments, the browser API and [`SampleRequest::new`]:
/// guidance 4, 250 evenly respaced DDPM steps, guidance on eps channels 0..2, seed 0.
pub const DEFAULT_CFG_SCALE: f32 = 4.0;
pub const DEFAULT_STEPS: usize = 250;
pub const DEFAULT_SAMPLER: &str = "ddpm";
/// The sampler of a flow (SiT) when none is asked for.
pub const DEFAULT_FLOW_SAMPLER: &str = "euler";
pub const DEFAULT_CFG_CHANNELS: &str = "official";

/// The default sampler of a network of `family`: DDPM for a DiT (the release's), Euler for a SiT (a flow), the
/// flow-map sampler for MeanFlow and DMF.
pub fn default_sampler(family: Family) -> SamplerKind {
    if family.is_flow_map() {
        return SamplerKind::FlowMap;
    }
    let name = if family.is_flow() { DEFAULT_FLOW_SAMPLER } else { DEFAULT_SAMPLER };
    SamplerKind::parse(name).expect("a known sampler")
}

/// The guidance scale when none is asked for: the release's 4 for DiT and SiT; 1 for a flow map, whose guidance is
/// trained in (MeanFlow / α-Flow and DMF sample at 1).
pub fn default_cfg_scale(family: Family) -> f32 {
    if family.is_flow_map() {
        1.0
    } else {
        DEFAULT_CFG_SCALE
    }
}

/// Steps when none are asked for: the release's 250 for DiT and SiT, one jump for a flow map.
pub fn default_steps(family: Family) -> Spacing {
    Spacing::Even(if family.is_flow_map() { 1 } else { DEFAULT_STEPS })
}

/// The times at which a guidance scale above 1 applies to a flow map, by default: the interval its guidance was
/// trained in (DMF's training script: `--g-min 0.0 --g-max 0.7`; α-Flow's trained-in guidance acts below t = 0.75).
pub fn default_guidance_interval(family: Family) -> (f64, f64) {
    match family {
        Family::Dmf => (0.0, 0.7),
        Family::Meanflow => (0.0, 0.75),
        Family::Dit | Family::Sit => (0.0, 1.0),
    }
}

/// How a flow map walks its grid (`diffusion::sampler::FlowMapGrid`); `steps` of the request give the uniform grid's
/// length.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowMapOptions {
    /// A custom grid from 1 down to 0 (`--grid 1,0.55,0`), instead of the uniform one of `steps` steps.
    pub grid: Option<Vec<f64>>,
    /// α-Flow's consistency steps (re-noise between jumps).
    pub consistency: bool,
    /// The time shift s of the grid, t' = s t / (1 + (s - 1) t) (DMF at 512 px: 1.5; 1 keeps it).
    pub shift: f64,
    /// Where a guidance scale above 1 applies; the family's [`default_guidance_interval`] when not given.
    pub guidance_interval: Option<(f64, f64)>,
}

impl Default for FlowMapOptions {
    fn default() -> Self {
        FlowMapOptions { grid: None, consistency: false, shift: 1.0, guidance_interval: None }
    }
}

/// A model's latents [N, C, h, w] (as [`sample`] returns them, in the model's own space) as the VAE decodes them
/// ([`decode`] divides by `vae_scale`, the VAE's scaling factor): unchanged for a model trained on the scaled VAE
/// latents (DiT, SiT, DMF: the VAE's 0.18215), and for MeanFlow / α-Flow the release's per-element statistics,
/// `x * sqrt(var + 1e-16) + mean`, scaled back.
pub fn to_vae_latents(cfg: &DitConfig, vae_scale: f64, latents: &[f32]) -> Vec<f32> {
    match &cfg.latent_stats {
        Some(stats) => stats.to_vae(latents).into_iter().map(|v| (v as f64 * vae_scale) as f32).collect(),
        None => latents.to_vec(),
    }
}

/// Rows of the DiT's batch for `images` images: with guidance (scale != 1) each image runs twice, with its class and
/// with the null class.
pub fn dit_batch(images: usize, cfg_scale: f32) -> usize {
    if cfg_scale != 1.0 {
        2 * images
    } else {
        images
    }
}

/// A blend of each image's class with another class, in the label embedding: image i is conditioned on
/// `(1 - alpha) * embed(classes[i]) + alpha * embed(with)` (the unconditional guidance branch keeps the null class).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blend {
    /// A real class (0..num_classes, not the null class).
    pub with: u32,
    /// In [0, 1]: 0 is `classes[i]` alone, 1 is `with` alone.
    pub alpha: f32,
}

/// The alpha of `dit sample --blend B` without `--alpha`: halfway.
pub const DEFAULT_BLEND_ALPHA: f32 = 0.5;

impl Blend {
    /// Checks that alpha is a number in [0, 1].
    pub fn check_alpha(&self) -> Result<()> {
        LabelMix::check_alpha(self.alpha)
    }

    /// Checks the blend against a model of `num_classes` real classes.
    pub fn check(&self, num_classes: usize) -> Result<()> {
        if self.with as usize >= num_classes {
            return Err(Error::input(format!(
                "blend class {} is out of range: blend with a real class 0..{} (not the null class {})",
                self.with,
                num_classes.saturating_sub(1),
                null_class(num_classes)
            )));
        }
        self.check_alpha()
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SampleRequest {
    /// One image per entry. The null class (`num_classes`) gives unconditional samples.
    pub classes: Vec<u32>,
    /// Every image's class blended with another class (in the label embedding), if given.
    pub blend: Option<Blend>,
    /// Classifier-free guidance scale; 1 disables guidance (and halves the work).
    pub cfg_scale: f32,
    /// The release's timestep respacing: `250` (even) or `ddim50`; for the flow samplers `K` solver steps.
    pub steps: Spacing,
    pub sampler: SamplerKind,
    pub cfg_channels: CfgChannels,
    /// Seed of the noise stream (`diffusion::rng`), used when `noise` is not given.
    pub seed: u64,
    /// Noise from outside: [K+1, N, C, h, w] (index 0 the starting latent, index i+1 the noise of the i-th step run)
    /// or, for the deterministic samplers, [1, N, C, h, w].
    pub noise: Option<Vec<f32>>,
    /// Latent side; the model's own by default.
    pub latent_size: Option<usize>,
    /// The flow-map sampler's grid and steps.
    pub flow_map: FlowMapOptions,
}

impl SampleRequest {
    /// The release's defaults for a list of classes ([`DEFAULT_CFG_SCALE`] and the rest).
    pub fn new(classes: Vec<u32>) -> SampleRequest {
        SampleRequest {
            classes,
            blend: None,
            cfg_scale: DEFAULT_CFG_SCALE,
            steps: Spacing::Even(DEFAULT_STEPS),
            sampler: SamplerKind::parse(DEFAULT_SAMPLER).expect("a known sampler"),
            cfg_channels: CfgChannels::parse(DEFAULT_CFG_CHANNELS).expect("a known guidance rule"),
            seed: 0,
            noise: None,
            latent_size: None,
            flow_map: FlowMapOptions::default(),
        }
    }
}

/// Progress of a run, passed to the step callback.
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// Steps done (1..=total).
    pub step: usize,
    pub total: usize,
    /// The training timestep just evaluated (a flow: 1000 t of the step's start, t in [0, 1]).
    pub timestep: usize,
    /// Seconds since sampling started.
    pub elapsed: f64,
}

/// Checks that `sampler` samples a model of `family`: a diffusion sampler a DiT, a flow solver a SiT, the flow-map
/// sampler a MeanFlow or DMF model.
pub fn check_sampler(family: Family, sampler: SamplerKind) -> Result<()> {
    let fits = match family {
        Family::Dit => !sampler.flow() && !sampler.flow_map(),
        Family::Sit => sampler.flow(),
        Family::Meanflow | Family::Dmf => sampler.flow_map(),
    };
    if fits {
        return Ok(());
    }
    let (what, use_) = match family {
        Family::Dit => ("a diffusion", "ddpm, ddim or dpmpp2m"),
        Family::Sit => ("a flow", "euler, heun, euler-maruyama or dopri5"),
        Family::Meanflow | Family::Dmf => ("a flow map", "flowmap"),
    };
    Err(Error::input(format!(
        "sampler `{}` does not sample a {} model ({what}): use {use_}",
        sampler.name(),
        family.name()
    )))
}

/// Runs the sampler and returns the final latents [N, C, h, w] (as the release returns them: [`decode`] divides
/// by the scaling factor). `on_step` runs after each step (the GPU has finished it); returning false cancels.
pub async fn sample(
    gpu: &Gpu,
    dit: &Dit,
    req: &SampleRequest,
    mut on_step: impl FnMut(&StepInfo) -> bool,
) -> Result<Vec<f32>> {
    let mut run = Sampling::start(gpu, dit, req).await?;
    while let Some(info) = run.step().await? {
        if !on_step(&info) {
            return Err(Error::Cancelled);
        }
    }
    run.finish().await
}

/// Decodes latents [N, C, h, w] (as [`sample`] returns them) into images [N, 3, H, W] f32 (about [-1, 1]).
pub async fn decode(gpu: &Gpu, vae: &Vae, latents: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>> {
    let c = vae.cfg.latent_channels;
    if latents.len() != n * c * h * w {
        return Err(Error::input(format!("latents have {} values, expected [{n}, {c}, {h}, {w}]", latents.len())));
    }
    decode_with(gpu, &vae.plan(gpu, h, w)?, latents, n).await
}

/// [`decode`] through a plan made for the latents' size (the browser keeps one per model).
pub async fn decode_with(gpu: &Gpu, plan: &VaePlan, latents: &[f32], n: usize) -> Result<Vec<f32>> {
    let per = latents.len() / n.max(1);
    let mut images = vec![];
    for i in 0..n {
        images.extend(plan.decode(gpu, &latents[i * per..(i + 1) * per]).await?);
    }
    Ok(images)
}

/// Readies a DiT and a VAE plan for sampling at the model's size: tunes the GPU kernels for one image at the family's default guidance (the
/// choices kept under `tune_key` in the browser's Cache Storage, if given) and runs a forward and a decode once, so
/// that every pipeline is compiled now (SwiftShader takes tens of seconds) and "ready" means ready. One guided image
/// must fit the adapter's limits: the plans check every buffer.
pub async fn warm_up(gpu: &Gpu, dit: &Dit, vae_plan: &VaePlan, tune_key: Option<&str>) -> Result<()> {
    let (batch, latent) = (dit_batch(1, default_cfg_scale(dit.cfg.arch)), dit.cfg.input_size);
    crate::tune::tune_dit(gpu, dit, batch, latent, tune_key).await?;
    let warm = dit.plan(gpu, batch, latent)?;
    gpu.run(warm.dispatches());
    gpu.run(vae_plan.dispatches());
    gpu.sync().await
}

/// Images [N, 3, H, W] in about [-1, 1] to 8-bit RGB, as the release saves them: clamp(127.5 x + 128, 0, 255).
pub fn to_rgb8(images: &[f32], n: usize, h: usize, w: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let img = &images[i * 3 * h * w..(i + 1) * 3 * h * w];
            let mut rgb = vec![0u8; h * w * 3];
            for p in 0..h * w {
                for ch in 0..3 {
                    rgb[p * 3 + ch] = (127.5 * img[ch * h * w + p] + 128.0).clamp(0.0, 255.0) as u8;
                }
            }
            rgb
        })
        .collect()
}
