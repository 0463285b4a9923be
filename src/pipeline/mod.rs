//! Class labels in, latents and images out: the sampling loop around the DiT forward and the GPU sampler step, then
//! the VAE decode. The loop uploads only the step's timesteps, scalars and (DDPM) noise; it reads nothing back until
//! the end, except for dopri5, whose adaptive steps are chosen on the host from each evaluation's velocity.

use crate::arch::{null_class, DitConfig, Family};
use crate::diffusion::dopri5::{Dopri5, SIT_ATOL, SIT_RTOL};
use crate::diffusion::sampler::{coefficients, flow_map_stage, flow_map_times, flow_stages, FlowMapGrid, Step};
use crate::diffusion::{CfgChannels, NoiseRng, SamplerKind, Schedule, Spacing};
use crate::error::{Error, Result};
use crate::gpu::{Arena, Gpu, Tensor};
use crate::model::{Dit, DitPlan, Vae, VaePlan};
use crate::ops::LabelMix;
use crate::util::now_seconds;

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

/// How a flow map walks its grid ([`FlowMapGrid`]); `steps` of the request give the uniform grid's length.
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

/// A sampling run in progress: [`Sampling::start`] checks the request and uploads the inputs, each
/// [`Sampling::step`] runs one denoising step on the GPU, [`Sampling::finish`] reads the latents back. Callers can
/// await between steps (progress, previews, cancellation).
pub struct Sampling<'a> {
    gpu: &'a Gpu,
    req: SampleRequest,
    schedule: Schedule,
    plan: DitPlan,
    step: Step,
    noise_buf: Tensor,
    prev: Tensor,
    rng: NoiseRng,
    learn_sigma: bool,
    per_step: usize,
    batch: usize,
    done: usize,
    t0: f64,
    /// dopri5's solver (started by the first step), and whether it has reached t = 1.
    ode: Option<Dopri5>,
    ode_done: bool,
    /// A flow map's grid.
    flow_map: Option<FlowMapGrid>,
    guide: Guide,
    _arena: Arena,
}

/// What the host needs to form the guided velocity from a forward's output (dopri5).
#[derive(Clone, Copy)]
struct Guide {
    images: usize,
    channels: usize,
    out_channels: usize,
    hw: usize,
    guided: bool,
    guided_channels: usize,
    scale: f64,
}

impl Guide {
    /// SiT's `forward_with_cfg` as the ODE's drift: the network on the state's first half twice (labels [y; null])
    /// or once without guidance, its first `channels` outputs kept; channels below `guided_channels` guided (the same
    /// in both halves), the others each row's own. `y` and the result are the whole state, [B, C, h, w].
    async fn velocity(&self, gpu: &Gpu, plan: &DitPlan, t: f64, y: &[f64]) -> Result<Vec<f64>> {
        let (n, c, hw) = (self.images, self.channels, self.hw);
        let rows = if self.guided { 2 * n } else { n };
        let half = &y[..n * c * hw];
        let x: Vec<f32> = half.iter().chain(if self.guided { half } else { &[][..] }).map(|&v| v as f32).collect();
        gpu.write(&plan.x.buf, 0, bytemuck::cast_slice(&x));
        gpu.write(&plan.t.buf, 0, bytemuck::cast_slice(&vec![t as f32; rows]));
        gpu.run(plan.dispatches());
        let out = gpu.read_f32(&plan.out).await?;
        let at = |row: usize, ch: usize, p: usize| out[(row * self.out_channels + ch) * hw + p] as f64;
        let mut v = vec![0f64; rows * c * hw];
        for row in 0..rows {
            let s = row % n;
            for ch in 0..c {
                for p in 0..hw {
                    v[(row * c + ch) * hw + p] = if self.guided && ch < self.guided_channels {
                        let (cond, uncond) = (at(s, ch, p), at(n + s, ch, p));
                        uncond + self.scale * (cond - uncond)
                    } else {
                        at(row, ch, p)
                    };
                }
            }
        }
        Ok(v)
    }
}

impl<'a> Sampling<'a> {
    pub async fn start(gpu: &'a Gpu, dit: &Dit, req: &SampleRequest) -> Result<Sampling<'a>> {
        let cfg = &dit.cfg;
        let n = req.classes.len();
        if n == 0 {
            return Err(Error::input("give at least one class"));
        }
        if let Some(&c) = req.classes.iter().find(|&&c| c as usize > cfg.num_classes) {
            return Err(Error::input(format!(
                "class {c} is out of range: this model has classes 0..{} ({} is the null class)",
                cfg.num_classes - 1,
                null_class(cfg.num_classes)
            )));
        }
        if let Some(b) = &req.blend {
            b.check(cfg.num_classes)?;
        }
        if !req.cfg_scale.is_finite() {
            return Err(Error::input(format!("guidance scale {} is not a finite number", req.cfg_scale)));
        }
        check_sampler(cfg.arch, req.sampler)?;
        let flow = cfg.arch.is_flow() || cfg.arch.is_flow_map();
        let flow_map = match req.sampler.flow_map() {
            true => {
                let steps = match req.steps {
                    Spacing::Even(k) => k,
                    s => return Err(Error::input(format!("steps {s:?}: a flow map takes a number of steps"))),
                };
                let o = &req.flow_map;
                let (lo, hi) = o.guidance_interval.unwrap_or(default_guidance_interval(cfg.arch));
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(Error::input(format!("guidance interval [{lo}, {hi}] must be two times lo <= hi")));
                }
                let times = flow_map_times(steps, o.grid.as_deref(), o.shift)?;
                Some(FlowMapGrid { times, consistency: o.consistency, guidance_interval: (lo, hi) })
            }
            false => None,
        };
        let schedule = match (flow, req.steps, &flow_map) {
            (_, _, Some(g)) => {
                Schedule { timesteps: vec![0; g.times.len() - 1], betas: vec![], alphas_cumprod: vec![] }
            }
            (false, s, _) => Schedule::new(s)?,
            (true, Spacing::Even(1), _) if req.sampler == SamplerKind::EulerMaruyama => {
                return Err(Error::input(
                    "euler-maruyama needs at least 2 steps (the last is SiT's noiseless 0.04 step)",
                ))
            }
            (true, Spacing::Even(k), _) if (1..=10_000).contains(&k) => {
                Schedule { timesteps: vec![0; k], betas: vec![], alphas_cumprod: vec![] }
            }
            (true, s, _) => {
                return Err(Error::input(format!(
                    "steps {s:?}: a flow sampler takes a number of solver steps between 1 and 10000"
                )))
            }
        };
        let k_steps = schedule.len();
        let latent = req.latent_size.unwrap_or(cfg.input_size);
        let (c, hw) = (cfg.in_channels, latent * latent);
        let per_step = n * c * hw;
        let stochastic = req.sampler.stochastic() || flow_map.as_ref().is_some_and(|g| g.consistency);
        if let Some(noise) = &req.noise {
            let ok = noise.len() == (k_steps + 1) * per_step || (!stochastic && noise.len() == per_step);
            if !ok {
                return Err(Error::input(format!(
                    "noise has {} values; expected [{}, {n}, {c}, {latent}, {latent}] = {} (the starting latent, then one per step){}",
                    noise.len(),
                    k_steps + 1,
                    (k_steps + 1) * per_step,
                    if stochastic { "" } else { ", or just the starting latent" }
                )));
            }
        }
        let guided = req.cfg_scale != 1.0;
        let batch = dit_batch(n, req.cfg_scale);
        crate::tune::tune_dit(gpu, dit, batch, latent, None).await?;
        let plan = dit.plan(gpu, batch, latent)?;
        let mut arena = Arena::new();
        let noise_buf = arena.f32(gpu, "step noise", &[n, c, latent, latent])?;
        let prev = arena.f32(gpu, "x0 estimate", &[n, c, latent, latent])?;
        // A flow map's guidance (a scale above 1) mixes all channels, as upstream's optional path does.
        let guided_channels = if flow_map.is_some() { c } else { req.cfg_channels.count(c) };
        let step =
            Step::new(gpu, req.sampler, &plan.x, &plan.out, &noise_buf, &prev, guided, guided_channels, req.cfg_scale)?;
        let mut s = Sampling {
            gpu,
            req: req.clone(),
            schedule,
            plan,
            step,
            noise_buf,
            prev,
            rng: NoiseRng::new(req.seed),
            learn_sigma: cfg.learn_sigma,
            per_step,
            batch,
            done: 0,
            t0: now_seconds(),
            ode: None,
            ode_done: false,
            flow_map,
            guide: Guide {
                images: n,
                channels: c,
                out_channels: cfg.out_channels(),
                hw,
                guided,
                guided_channels,
                scale: req.cfg_scale as f64,
            },
            _arena: arena,
        };
        // Inputs: the starting latent in both halves; labels [y (blended if asked); null].
        let x0 = s.noise_at(0);
        let mut x_init = x0.clone();
        let mut labels: Vec<LabelMix> = match req.blend {
            Some(b) => req.classes.iter().map(|&c| LabelMix::blend(c, b.with, b.alpha)).collect(),
            None => req.classes.iter().map(|&c| LabelMix::class(c)).collect(),
        };
        if guided {
            x_init.extend_from_slice(&x0);
            labels.extend(std::iter::repeat_n(LabelMix::class(null_class(cfg.num_classes) as u32), n));
        }
        gpu.write(&s.plan.x.buf, 0, bytemuck::cast_slice(&x_init));
        s.plan.write_labels(gpu, &labels)?;
        Ok(s)
    }

    fn noise_at(&mut self, i: usize) -> Vec<f32> {
        match &self.req.noise {
            Some(v) => v[i * self.per_step..(i + 1) * self.per_step].to_vec(),
            None => self.rng.normals(self.per_step),
        }
    }

    /// Total steps of the run.
    pub fn total(&self) -> usize {
        self.schedule.len()
    }

    /// Runs the next step and waits for the GPU; `None` once all steps are done.
    pub async fn step(&mut self) -> Result<Option<StepInfo>> {
        let k_steps = self.schedule.len();
        let i = self.done;
        if self.req.sampler == SamplerKind::Dopri5 {
            return self.ode_step().await;
        }
        if i == k_steps {
            return Ok(None);
        }
        if let Some(g) = &self.flow_map {
            let (t, r, stage) = flow_map_stage(g, i);
            let ((lo, hi), consistency) = (g.guidance_interval, g.consistency);
            if consistency {
                let z = self.noise_at(i + 1);
                self.gpu.write(&self.noise_buf.buf, 0, bytemuck::cast_slice(&z));
            }
            let (t32, r32) = (vec![t as f32; self.batch], vec![r as f32; self.batch]);
            self.gpu.write(&self.plan.t.buf, 0, bytemuck::cast_slice(&t32));
            self.plan.set_end_times(self.gpu, &t32, &r32)?;
            let scale = if (lo..=hi).contains(&t) { self.req.cfg_scale } else { 1.0 };
            self.step.set_flow_stage(self.gpu, &stage, scale);
            self.gpu.run(self.plan.dispatches().iter().chain([&self.step.dispatch]));
            self.gpu.sync().await?;
            self.done += 1;
            let timestep = (1000.0 * t).round() as usize;
            return Ok(Some(StepInfo { step: i + 1, total: k_steps, timestep, elapsed: now_seconds() - self.t0 }));
        }
        if self.req.sampler.flow() {
            // A flow: t in [0, 1] straight into the timestep embedding; Heun runs two forwards.
            let stages = flow_stages(self.req.sampler, i, k_steps);
            if self.req.sampler.stochastic() {
                let z = self.noise_at(i + 1);
                self.gpu.write(&self.noise_buf.buf, 0, bytemuck::cast_slice(&z));
            }
            for st in &stages {
                self.gpu.write(&self.plan.t.buf, 0, bytemuck::cast_slice(&vec![st.t as f32; self.batch]));
                self.step.set_flow_stage(self.gpu, st, self.req.cfg_scale);
                self.gpu.run(self.plan.dispatches().iter().chain([&self.step.dispatch]));
            }
            self.gpu.sync().await?;
            self.done += 1;
            let timestep = (1000.0 * stages[0].t).round() as usize;
            return Ok(Some(StepInfo { step: i + 1, total: k_steps, timestep, elapsed: now_seconds() - self.t0 }));
        }
        let t = self.schedule.timesteps[k_steps - 1 - i];
        self.gpu.write(&self.plan.t.buf, 0, bytemuck::cast_slice(&vec![t as f32; self.batch]));
        self.step.set_coefficients(self.gpu, coefficients(self.req.sampler, &self.schedule, i, self.learn_sigma));
        if self.req.sampler.stochastic() {
            let z = self.noise_at(i + 1);
            self.gpu.write(&self.noise_buf.buf, 0, bytemuck::cast_slice(&z));
        }
        self.gpu.run(self.plan.dispatches().iter().chain([&self.step.dispatch]));
        self.gpu.sync().await?;
        self.done += 1;
        Ok(Some(StepInfo { step: i + 1, total: k_steps, timestep: t, elapsed: now_seconds() - self.t0 }))
    }

    /// One dopri5 step attempt (the first call also starts the solver); the end once it has reached t = 1, where the
    /// dense output is written as the final latents. `total` is an estimate: the attempts so far plus the steps of
    /// the current size that reach t = 1.
    async fn ode_step(&mut self) -> Result<Option<StepInfo>> {
        if self.ode_done {
            return Ok(None);
        }
        let start = if self.ode.is_none() { Some(self.noise_at(0)) } else { None };
        let Sampling { gpu, plan, guide, ode, prev, per_step, .. } = self;
        let (gpu, plan, guide) = (*gpu, &*plan, *guide);
        let mut drift = async |t: f64, y: &[f64]| guide.velocity(gpu, plan, t, y).await;
        if let Some(x0) = start {
            let rows = if guide.guided { 2 } else { 1 };
            let y0: Vec<f64> = (0..rows).flat_map(|_| x0.iter().map(|&v| v as f64)).collect();
            *ode = Some(Dopri5::start(0.0, y0, SIT_ATOL, SIT_RTOL, &mut drift).await?);
        }
        let ode = ode.as_mut().expect("started above");
        let t_start = ode.t;
        if ode.t < 1.0 {
            ode.attempt(&mut drift).await?;
        }
        let n_values = *per_step;
        let (y, f) = ode.state();
        // The preview: the data the current state points at, x + (1 - t) v.
        let estimate: Vec<f32> = y[..n_values].iter().zip(f).map(|(y, v)| (y + (1.0 - ode.t) * v) as f32).collect();
        gpu.write(&prev.buf, 0, bytemuck::cast_slice(&estimate));
        let attempts = ode.accepted + ode.rejected;
        if ode.t >= 1.0 {
            let z: Vec<f32> = ode.at(1.0)[..n_values].iter().map(|&v| v as f32).collect();
            gpu.write(&plan.x.buf, 0, bytemuck::cast_slice(&z));
            self.ode_done = true;
        }
        let left = if self.ode_done { 0 } else { ((1.0 - ode.t) / ode.dt).ceil().clamp(1.0, 1e4) as usize };
        let timestep = (1000.0 * t_start).round() as usize;
        Ok(Some(StepInfo { step: attempts, total: attempts + left, timestep, elapsed: now_seconds() - self.t0 }))
    }

    /// The current estimate of the clean latents [N, C, h, w] (the last step's x0 prediction), for previews.
    pub async fn estimate(&self) -> Result<Vec<f32>> {
        self.gpu.read_f32(&self.prev).await
    }

    /// Reads back the final latents [N, C, h, w].
    pub async fn finish(self) -> Result<Vec<f32>> {
        let mut out = self.gpu.read_f32(&self.plan.x).await?;
        out.truncate(self.per_step);
        Ok(out)
    }
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
