//! A sampling run: [`Sampling::start`] checks the request, decides what the run walks through ([`Walk`]: a diffusion
//! schedule, a flow solver's steps, dopri5's adaptive steps or a flow map's grid), plans the DiT forward and the GPU
//! step, and uploads the inputs; each [`Sampling::step`] runs one step of that walk; [`Sampling::finish`] reads the
//! latents back. The loop uploads only the step's times, scalars and noise; it reads nothing back until the end,
//! except for dopri5, whose adaptive steps are chosen on the host from each evaluation's velocity.

use super::{check_sampler, default_guidance_interval, dit_batch, SampleRequest, StepInfo};
use crate::arch::{null_class, DitConfig};
use crate::diffusion::dopri5::{Dopri5, SIT_ATOL, SIT_RTOL};
use crate::diffusion::sampler::{coefficients, flow_map_stage, flow_map_times, flow_stages, FlowMapGrid, Step};
use crate::diffusion::{NoiseRng, SamplerKind, Schedule, Spacing};
use crate::error::{Error, Result};
use crate::gpu::{Arena, Gpu, Tensor};
use crate::model::{Dit, DitPlan};
use crate::ops::LabelMix;
use crate::util::now_seconds;

/// Largest number of steps of the fixed-step flow solvers (Euler, Heun, Euler-Maruyama).
const MAX_FLOW_STEPS: usize = 10_000;

/// What a run steps through.
enum Walk {
    /// DDPM, DDIM or DPM-Solver++(2M) over the release's respaced schedule.
    Diffusion(Schedule),
    /// Euler, Heun or Euler-Maruyama over K uniform steps of a flow (`diffusion::sampler::flow_stages`).
    Flow(usize),
    /// dopri5's adaptive steps; the solver, once the first step has started it.
    Ode(Option<Dopri5>),
    /// A flow map's jumps over its grid.
    FlowMap(FlowMapGrid),
}

impl Walk {
    /// The walk `req` asks of a model of `cfg`'s family (the sampler is checked to fit it).
    fn new(cfg: &DitConfig, req: &SampleRequest) -> Result<Walk> {
        check_sampler(cfg.arch, req.sampler)?;
        match (req.sampler, req.steps) {
            (SamplerKind::Dopri5, _) => Ok(Walk::Ode(None)),
            (SamplerKind::FlowMap, Spacing::Even(k)) => {
                let o = &req.flow_map;
                let (lo, hi) = o.guidance_interval.unwrap_or(default_guidance_interval(cfg.arch));
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(Error::input(format!("guidance interval [{lo}, {hi}] must be two times lo <= hi")));
                }
                let times = flow_map_times(k, o.grid.as_deref(), o.shift)?;
                Ok(Walk::FlowMap(FlowMapGrid { times, consistency: o.consistency, guidance_interval: (lo, hi) }))
            }
            (SamplerKind::EulerMaruyama, Spacing::Even(1)) => {
                Err(Error::input("euler-maruyama needs at least 2 steps (the last is SiT's noiseless 0.04 step)"))
            }
            (s, Spacing::Even(k)) if s.flow() && (1..=MAX_FLOW_STEPS).contains(&k) => Ok(Walk::Flow(k)),
            (s, steps) if s.flow() || s.flow_map() => Err(Error::input(format!(
                "steps {steps:?}: a flow sampler takes a number of solver steps between 1 and {MAX_FLOW_STEPS}"
            ))),
            (_, steps) => Ok(Walk::Diffusion(Schedule::new(steps)?)),
        }
    }

    /// Steps of the walk (dopri5: the steps asked for, an estimate its step events correct).
    fn len(&self, req: &SampleRequest) -> usize {
        match self {
            Walk::Diffusion(s) => s.len(),
            Walk::Flow(k) => *k,
            Walk::Ode(_) => match req.steps {
                Spacing::Even(k) | Spacing::Ddim(k) => k,
            },
            Walk::FlowMap(g) => g.times.len() - 1,
        }
    }

    /// Whether steps draw fresh noise (`--noise` then holds one latent per step after the starting one).
    fn stochastic(&self, sampler: SamplerKind) -> bool {
        match self {
            Walk::FlowMap(g) => g.consistency,
            _ => sampler.stochastic(),
        }
    }
}

/// The latents of a run: `n` images of `c` channels at side `latent`.
#[derive(Clone, Copy)]
struct Shape {
    n: usize,
    c: usize,
    latent: usize,
}

impl Shape {
    fn hw(&self) -> usize {
        self.latent * self.latent
    }

    /// Values of one latent of every image.
    fn values(&self) -> usize {
        self.n * self.c * self.hw()
    }
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

/// A sampling run in progress. Callers can await between steps (progress, previews, cancellation).
pub struct Sampling<'a> {
    gpu: &'a Gpu,
    req: SampleRequest,
    walk: Walk,
    /// Steps of the walk ([`Walk::len`]).
    total: usize,
    plan: DitPlan,
    step: Step,
    noise_buf: Tensor,
    prev: Tensor,
    rng: NoiseRng,
    learn_sigma: bool,
    shape: Shape,
    /// Rows of the DiT's batch (2N with guidance).
    batch: usize,
    done: usize,
    t0: f64,
    guide: Guide,
    _arena: Arena,
}

impl<'a> Sampling<'a> {
    /// Checks `req` against the model, plans the forward and the step, and uploads the starting latent and labels.
    pub async fn start(gpu: &'a Gpu, dit: &Dit, req: &SampleRequest) -> Result<Sampling<'a>> {
        let cfg = &dit.cfg;
        check_request(cfg, req)?;
        let walk = Walk::new(cfg, req)?;
        let total = walk.len(req);
        let shape =
            Shape { n: req.classes.len(), c: cfg.in_channels, latent: req.latent_size.unwrap_or(cfg.input_size) };
        check_noise(req, shape, total, walk.stochastic(req.sampler))?;
        let guided = req.cfg_scale != 1.0;
        // A flow map's guidance (a scale above 1) mixes all channels, as upstream's optional path does.
        let guided_channels = if matches!(walk, Walk::FlowMap(_)) { shape.c } else { req.cfg_channels.count(shape.c) };
        let batch = dit_batch(shape.n, req.cfg_scale);
        crate::tune::tune_dit(gpu, dit, batch, shape.latent, None).await?;
        let plan = dit.plan(gpu, batch, shape.latent)?;
        let mut arena = Arena::new();
        let one = [shape.n, shape.c, shape.latent, shape.latent];
        let (noise_buf, prev) = (arena.f32(gpu, "step noise", &one)?, arena.f32(gpu, "x0 estimate", &one)?);
        let step =
            Step::new(gpu, req.sampler, &plan.x, &plan.out, &noise_buf, &prev, guided, guided_channels, req.cfg_scale)?;
        let guide = Guide {
            images: shape.n,
            channels: shape.c,
            out_channels: cfg.out_channels(),
            hw: shape.hw(),
            guided,
            guided_channels,
            scale: req.cfg_scale as f64,
        };
        let mut s = Sampling {
            gpu,
            req: req.clone(),
            walk,
            total,
            plan,
            step,
            noise_buf,
            prev,
            rng: NoiseRng::new(req.seed),
            learn_sigma: cfg.learn_sigma,
            shape,
            batch,
            done: 0,
            t0: now_seconds(),
            guide,
            _arena: arena,
        };
        s.upload_inputs(cfg)?;
        Ok(s)
    }

    /// The starting latent in both halves of a guided batch; labels [y (blended if asked); null].
    fn upload_inputs(&mut self, cfg: &DitConfig) -> Result<()> {
        let x0 = self.noise_at(0);
        let mut x_init = x0.clone();
        let mut labels: Vec<LabelMix> = match self.req.blend {
            Some(b) => self.req.classes.iter().map(|&c| LabelMix::blend(c, b.with, b.alpha)).collect(),
            None => self.req.classes.iter().map(|&c| LabelMix::class(c)).collect(),
        };
        if self.guide.guided {
            x_init.extend_from_slice(&x0);
            labels.extend(std::iter::repeat_n(LabelMix::class(null_class(cfg.num_classes) as u32), self.shape.n));
        }
        self.gpu.write(&self.plan.x.buf, 0, bytemuck::cast_slice(&x_init));
        self.plan.write_labels(self.gpu, &labels)
    }

    /// Latent `i` of the noise stream: index 0 the starting latent, i + 1 the fresh noise of step i.
    fn noise_at(&mut self, i: usize) -> Vec<f32> {
        let per = self.shape.values();
        match &self.req.noise {
            Some(v) => v[i * per..(i + 1) * per].to_vec(),
            None => self.rng.normals(per),
        }
    }

    /// Uploads step `i`'s fresh noise.
    fn upload_noise(&mut self, i: usize) {
        let z = self.noise_at(i + 1);
        self.gpu.write(&self.noise_buf.buf, 0, bytemuck::cast_slice(&z));
    }

    /// Total steps of the run.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Runs the next step and waits for the GPU; `None` once all steps are done.
    pub async fn step(&mut self) -> Result<Option<StepInfo>> {
        if matches!(self.walk, Walk::Ode(_)) {
            return self.ode_step().await;
        }
        let i = self.done;
        if i == self.total {
            return Ok(None);
        }
        let timestep = match &self.walk {
            Walk::FlowMap(g) => {
                let g = g.clone();
                self.flow_map_step(&g, i)?
            }
            Walk::Flow(k) => {
                let k = *k;
                self.flow_step(i, k)
            }
            Walk::Diffusion(_) => self.diffusion_step(i),
            Walk::Ode(_) => unreachable!("stepped above"),
        };
        self.gpu.sync().await?;
        self.done += 1;
        Ok(Some(StepInfo { step: i + 1, total: self.total, timestep, elapsed: now_seconds() - self.t0 }))
    }

    /// One jump of a flow map from t to r (a consistency step: to 0, then re-noised to r); guidance above 1 only
    /// inside the trained interval. Returns 1000 t.
    fn flow_map_step(&mut self, g: &FlowMapGrid, i: usize) -> Result<usize> {
        let (t, r, stage) = flow_map_stage(g, i);
        if g.consistency {
            self.upload_noise(i);
        }
        let (t32, r32) = (vec![t as f32; self.batch], vec![r as f32; self.batch]);
        self.gpu.write(&self.plan.t.buf, 0, bytemuck::cast_slice(&t32));
        self.plan.set_end_times(self.gpu, &t32, &r32)?;
        let (lo, hi) = g.guidance_interval;
        let scale = if (lo..=hi).contains(&t) { self.req.cfg_scale } else { 1.0 };
        self.step.set_flow_stage(self.gpu, &stage, scale);
        self.gpu.run(self.plan.dispatches().iter().chain([&self.step.dispatch]));
        Ok((1000.0 * t).round() as usize)
    }

    /// One step of a flow solver: t in [0, 1] straight into the timestep embedding; Heun runs two forwards.
    /// Returns 1000 t of the step's start.
    fn flow_step(&mut self, i: usize, k: usize) -> usize {
        let stages = flow_stages(self.req.sampler, i, k);
        if self.req.sampler.stochastic() {
            self.upload_noise(i);
        }
        for st in &stages {
            self.gpu.write(&self.plan.t.buf, 0, bytemuck::cast_slice(&vec![st.t as f32; self.batch]));
            self.step.set_flow_stage(self.gpu, st, self.req.cfg_scale);
            self.gpu.run(self.plan.dispatches().iter().chain([&self.step.dispatch]));
        }
        (1000.0 * stages[0].t).round() as usize
    }

    /// One step of a diffusion sampler at the schedule's timestep. Returns that timestep.
    fn diffusion_step(&mut self, i: usize) -> usize {
        let Walk::Diffusion(schedule) = &self.walk else { unreachable!("a diffusion walk") };
        let t = schedule.timesteps[self.total - 1 - i];
        let c = coefficients(self.req.sampler, schedule, i, self.learn_sigma);
        self.gpu.write(&self.plan.t.buf, 0, bytemuck::cast_slice(&vec![t as f32; self.batch]));
        self.step.set_coefficients(self.gpu, c);
        if self.req.sampler.stochastic() {
            self.upload_noise(i);
        }
        self.gpu.run(self.plan.dispatches().iter().chain([&self.step.dispatch]));
        t
    }

    /// One dopri5 step attempt (the first call also starts the solver); the end once it has reached t = 1, where the
    /// dense output is written as the final latents. `total` is an estimate: the attempts so far plus the steps of
    /// the current size that reach t = 1.
    async fn ode_step(&mut self) -> Result<Option<StepInfo>> {
        if self.done > 0 {
            return Ok(None);
        }
        let start = matches!(self.walk, Walk::Ode(None)).then(|| self.noise_at(0));
        let Sampling { gpu, plan, guide, walk, prev, shape, .. } = self;
        let Walk::Ode(ode) = walk else { unreachable!("a dopri5 walk") };
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
        let n_values = shape.values();
        let (y, f) = ode.state();
        // The preview: the data the current state points at, x + (1 - t) v.
        let estimate: Vec<f32> = y[..n_values].iter().zip(f).map(|(y, v)| (y + (1.0 - ode.t) * v) as f32).collect();
        gpu.write(&prev.buf, 0, bytemuck::cast_slice(&estimate));
        let attempts = ode.accepted + ode.rejected;
        let reached = ode.t >= 1.0;
        if reached {
            let z: Vec<f32> = ode.at(1.0)[..n_values].iter().map(|&v| v as f32).collect();
            gpu.write(&plan.x.buf, 0, bytemuck::cast_slice(&z));
        }
        let left = if reached { 0 } else { ((1.0 - ode.t) / ode.dt).ceil().clamp(1.0, 1e4) as usize };
        self.done = usize::from(reached);
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
        out.truncate(self.shape.values());
        Ok(out)
    }
}

/// The request's classes, blend and guidance scale against the model.
fn check_request(cfg: &DitConfig, req: &SampleRequest) -> Result<()> {
    if req.classes.is_empty() {
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
    Ok(())
}

/// Noise from outside holds the starting latent and one per step, or (a deterministic walk) the starting latent only.
fn check_noise(req: &SampleRequest, shape: Shape, steps: usize, stochastic: bool) -> Result<()> {
    let Some(noise) = &req.noise else { return Ok(()) };
    let per = shape.values();
    if noise.len() == (steps + 1) * per || (!stochastic && noise.len() == per) {
        return Ok(());
    }
    let Shape { n, c, latent } = shape;
    Err(Error::input(format!(
        "noise has {} values; expected [{}, {n}, {c}, {latent}, {latent}] = {} (the starting latent, then one per \
         step){}",
        noise.len(),
        steps + 1,
        (steps + 1) * per,
        if stochastic { "" } else { ", or just the starting latent" }
    )))
}
