//! The samplers: per-step coefficients (f64, on the host) and the GPU step that applies guidance and the update
//! (`shaders/sampler/sampler.wgsl`).

use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, Dispatch, Gpu, KernelSpec, Res, Tensor};

const SOURCE: &str = crate::shader!("sampler/sampler");

/// Which sampler (the names [`SamplerKind::parse`] reads, the package's `sampler` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Ancestral DDPM with the learned-range variance (the paper's 250-step sampler).
    Ddpm,
    /// DDIM, eta = 0.
    Ddim,
    /// DPM-Solver++(2M): multistep, data prediction, first order on the first and last steps (diffusers'
    /// `DPMSolverMultistepScheduler` with `lower_order_final` and `final_sigmas_type="zero"`).
    #[serde(rename = "dpmpp2m", alias = "dpm++2m", alias = "dpm-solver++")]
    DpmSolverPp2m,
    /// Flow models (SiT): Euler's ODE method over the uniform grid t = 0, 1/K, ..., 1 (0 = noise, 1 = data).
    Euler,
    /// Flow models (SiT): Heun's method (torchdiffeq's `heun2`) over the same grid: two forwards per step.
    Heun,
    /// Flow models (SiT): the Euler-Maruyama SDE with SiT's sampling defaults (diffusion form "sigma", norm 1, last
    /// step "Mean" of 0.04): K model evaluations, K - 1 noisy steps over `linspace(0, 0.96, K)` and a last noiseless
    /// drift step of 0.04.
    #[serde(alias = "em")]
    EulerMaruyama,
    /// Flow models (SiT): SiT's default ODE sampler, torchdiffeq's adaptive `dopri5` with atol 1e-6 and rtol 1e-3
    /// (`diffusion::dopri5`), from t = 0 to 1: the step count is its own (the requested steps are not used).
    Dopri5,
    /// Flow maps (MeanFlow / α-Flow, Decoupled MeanFlow): one network call jumps from t to r over a grid from t = 1
    /// (noise) to 0 (data), x <- x - (t - r) u(x; t, r) ([`flow_map_stage`]; the grid: [`FlowMapGrid`]).
    #[serde(rename = "flowmap", alias = "flow-map")]
    FlowMap,
}

impl SamplerKind {
    pub fn parse(s: &str) -> Result<SamplerKind> {
        crate::util::from_name(s).ok_or_else(|| {
            Error::input(format!(
                "unknown sampler `{s}`: use ddpm, ddim or dpmpp2m (DiT), euler, heun, euler-maruyama or dopri5 (SiT), \
                 or flowmap (MeanFlow, DMF)"
            ))
        })
    }

    /// Whether the sampler takes one jump of a flow map per step (a MeanFlow or DMF model).
    pub fn flow_map(self) -> bool {
        self == SamplerKind::FlowMap
    }

    /// Whether each step draws Gaussian noise (the flow map's consistency steps do too: `FlowMapGrid::consistency`).
    pub fn stochastic(self) -> bool {
        matches!(self, SamplerKind::Ddpm | SamplerKind::EulerMaruyama)
    }

    /// Whether the sampler integrates a flow (a SiT's velocity) rather than a diffusion (a DiT's eps).
    pub fn flow(self) -> bool {
        matches!(self, SamplerKind::Euler | SamplerKind::Heun | SamplerKind::EulerMaruyama | SamplerKind::Dopri5)
    }

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::DpmSolverPp2m => "dpmpp2m",
            SamplerKind::Euler => "euler",
            SamplerKind::Heun => "heun",
            SamplerKind::EulerMaruyama => "euler-maruyama",
            SamplerKind::Dopri5 => "dopri5",
            SamplerKind::FlowMap => "flowmap",
        }
    }

    fn code(self) -> u32 {
        match self {
            SamplerKind::Ddpm => 0,
            SamplerKind::Ddim => 1,
            SamplerKind::DpmSolverPp2m => 2,
            SamplerKind::Euler
            | SamplerKind::Heun
            | SamplerKind::EulerMaruyama
            | SamplerKind::Dopri5
            | SamplerKind::FlowMap => FLOW_FROM_X,
        }
    }
}

/// Which eps channels classifier-free guidance mixes (the package's `cfgChannels` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum CfgChannels {
    /// The release's rule: channels 0..2 only ("for exact reproducibility").
    Official,
    /// All latent channels (diffusers' DiT pipeline).
    All,
}

impl CfgChannels {
    pub fn parse(s: &str) -> Result<CfgChannels> {
        crate::util::from_name(s)
            .ok_or_else(|| Error::input(format!("unknown guidance rule `{s}`: use official (channels 0..2) or all")))
    }

    /// Number of guided channels for a model with `channels` latent channels.
    pub fn count(self, channels: usize) -> usize {
        match self {
            CfgChannels::Official => 3.min(channels),
            CfgChannels::All => channels,
        }
    }
}

/// Shader kinds of the flow steps (sampler.wgsl): x' = x + c0 v, prev = x + c1 v; and x' = prev + c0 v, prev = x'.
pub const FLOW_FROM_X: u32 = 3;
pub const FLOW_FROM_PREV: u32 = 4;
/// The SDE step (sampler.wgsl): x' = c2 x + c0 v + c3 z, prev = x + c1 v.
pub const FLOW_SDE: u32 = 5;
/// SiT's SDE defaults: the last step ("Mean") is a noiseless drift step of this size, ending the grid at 1 - it.
pub const SDE_LAST_STEP: f64 = 0.04;

/// One model evaluation of a flow solver step: the time t fed to the model and the shader's (kind, c0, c1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowStage {
    pub t: f64,
    pub kind: u32,
    pub c0: f64,
    pub c1: f64,
    pub c2: f64,
    pub c3: f64,
}

/// The model evaluations of solver step `i` of `k` over the grid t_i = i / K (in f64).
/// Euler: x' = x + h v(x, t_i) (prev gets the data estimate x + (1 - t_i) v).
/// Heun: predictor x~ = x + h v1 with prev = x + h/2 v1, then x' = prev + h/2 v2 with v2 = v(x~, t_{i+1}) (prev gets
/// the data estimate x' + (1 - t_{i+1}) v2, for previews).
/// Euler-Maruyama (SiT's linear path, velocity model, diffusion D(t) = 1 - t): the score from the velocity is
/// (t v - x) / (1 - t), the drift v + D score; x' = x + dt drift + sqrt(2 D dt) z over `linspace(0, 0.96, K)`,
/// and the last of the K evaluations x' = x + 0.04 drift(x, 0.96) without noise.
pub fn flow_stages(kind: SamplerKind, i: usize, k: usize) -> Vec<FlowStage> {
    let (t, h) = (i as f64 / k as f64, 1.0 / k as f64);
    let t_next = (i + 1) as f64 / k as f64;
    match kind {
        SamplerKind::Heun => vec![
            FlowStage { t, kind: FLOW_FROM_X, c0: h, c1: 0.5 * h, c2: 0.0, c3: 0.0 },
            FlowStage { t: t_next, kind: FLOW_FROM_PREV, c0: 0.5 * h, c1: 1.0 - t_next, c2: 0.0, c3: 0.0 },
        ],
        SamplerKind::EulerMaruyama => {
            let t1 = 1.0 - SDE_LAST_STEP;
            let grid = t1 / (k.max(2) - 1) as f64;
            let last = i + 1 >= k;
            let (t, dt) = if last { (t1, SDE_LAST_STEP) } else { (i as f64 * grid, grid) };
            let d = 1.0 - t; // diffusion form "sigma", norm 1
            let (a, b) = (1.0 + d * t / (1.0 - t), d / (1.0 - t)); // drift = a v - b x
            let noise = if last { 0.0 } else { (2.0 * d * dt).sqrt() };
            vec![FlowStage { t, kind: FLOW_SDE, c0: dt * a, c1: 1.0 - t, c2: 1.0 - dt * b, c3: noise }]
        }
        _ => vec![FlowStage { t, kind: FLOW_FROM_X, c0: h, c1: 1.0 - t, c2: 0.0, c3: 0.0 }],
    }
}

/// Largest number of flow-map steps (a flow map is sampled in a handful; more is a mistake, not a request).
pub const MAX_FLOW_MAP_STEPS: usize = 1000;

/// A flow map's time grid, from t = 1 (noise) down to 0 (data), and how each step uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowMapGrid {
    /// Descending from 1 to 0: step i jumps from `times[i]` to `times[i + 1]`.
    pub times: Vec<f64>,
    /// α-Flow's consistency steps: the network jumps to r = 0 (x0 = x - t u(x; t, 0)) and the state is re-noised to
    /// the next time with fresh noise, x <- (1 - r) x0 + r z.
    pub consistency: bool,
    /// Guidance (a scale above 1) applies only at times in [lo, hi], the interval the model was trained to guide in.
    pub guidance_interval: (f64, f64),
}

/// The times of a flow-map grid: the uniform grid [1, (K-1)/K, ..., 0] of `steps` steps, or the given `grid`, each
/// time warped by `shift` (DMF samples its 512 px model with 1.5): t' = s t / (1 + (s - 1) t).
pub fn flow_map_times(steps: usize, grid: Option<&[f64]>, shift: f64) -> Result<Vec<f64>> {
    if !(shift.is_finite() && shift > 0.0) {
        return Err(Error::input(format!("shift {shift} must be a positive number (1 keeps the grid)")));
    }
    let times: Vec<f64> = match grid {
        Some(g) => g.to_vec(),
        None if (1..=MAX_FLOW_MAP_STEPS).contains(&steps) => {
            (0..=steps).map(|i| (steps - i) as f64 / steps as f64).collect()
        }
        None => return Err(Error::input(format!("{steps} steps: a flow map takes 1 to {MAX_FLOW_MAP_STEPS} steps"))),
    };
    let ok = times.len() >= 2
        && times.len() <= MAX_FLOW_MAP_STEPS + 1
        && times.first() == Some(&1.0)
        && times.last() == Some(&0.0)
        && times.windows(2).all(|w| w[0] > w[1]);
    if !ok {
        return Err(Error::input(format!(
            "grid {times:?}: a flow-map grid goes from 1 (noise) down to 0 (data), strictly decreasing, e.g. 1,0.55,0"
        )));
    }
    Ok(times.iter().map(|&t| shift * t / (1.0 + (shift - 1.0) * t)).collect())
}

/// Step `i` of a flow-map grid: the times (t, r) the network is called at and the shader's stage, in f64.
///   plain:       x' = x + (r - t) u(x; t, r)                       (kind 3: c0 = r - t)
///   consistency: u at (t, 0), x0 = x - t u, x' = (1 - r') x0 + r' z  (kind 5: c2 = 1 - r', c0 = -(1 - r') t, c3 = r')
/// with r' the grid's next time; `prev` gets the data estimate x - t u (c1 = -t). On the last step (r' = 0) both are
/// the same jump to the data.
pub fn flow_map_stage(g: &FlowMapGrid, i: usize) -> (f64, f64, FlowStage) {
    let (t, next) = (g.times[i], g.times[i + 1]);
    if g.consistency {
        let stage = FlowStage { t, kind: FLOW_SDE, c0: -(1.0 - next) * t, c1: -t, c2: 1.0 - next, c3: next };
        (t, 0.0, stage)
    } else {
        (t, next, FlowStage { t, kind: FLOW_FROM_X, c0: next - t, c1: -t, c2: 0.0, c3: 0.0 })
    }
}

/// Uniform parameters of `sampler.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepParams {
    pub count: u32,
    pub chw: u32,
    pub hw: u32,
    pub channels: u32,
    pub out_channels: u32,
    pub guided: u32,
    pub guided_channels: u32,
    pub kind: u32,
    pub scale: f32,
    pub c: [f32; 7],
}

/// The f64 coefficients c0..c6 of step `i` (the i-th step run, at schedule index k = K-1-i); see sampler.wgsl.
pub fn coefficients(kind: SamplerKind, s: &Schedule, i: usize, learn_sigma: bool) -> [f64; 7] {
    let k = s.len() - 1 - i;
    match kind {
        SamplerKind::Ddpm => {
            let c = s.ddpm(k);
            // Without learned sigma the release uses the fixed "large" variance: beta_k (posterior variance at k = 0).
            let (min_log, max_log) = if learn_sigma {
                (c.min_log, c.max_log)
            } else {
                let fixed = if k == 0 { c.min_log } else { s.betas[k].ln() };
                (fixed, fixed)
            };
            [
                c.sqrt_recip_alphas_cumprod,
                c.sqrt_recipm1_alphas_cumprod,
                c.posterior_mean_coef1,
                c.posterior_mean_coef2,
                min_log,
                max_log,
                if c.add_noise { 1.0 } else { 0.0 },
            ]
        }
        SamplerKind::Ddim => {
            let c = s.ddim(k);
            [
                c.sqrt_recip_alphas_cumprod,
                c.sqrt_recipm1_alphas_cumprod,
                c.sqrt_alphas_cumprod_prev,
                c.sqrt_one_minus_alphas_cumprod_prev,
                0.0,
                0.0,
                0.0,
            ]
        }
        SamplerKind::DpmSolverPp2m => {
            let a = s.alphas_cumprod[k];
            let (c0, c1) = ((1.0 / a).sqrt(), (1.0 / a - 1.0).sqrt());
            let (_, sigma_s, lambda_s) = s.vp(k);
            if k == 0 {
                // Final step to sigma = 0: x' = x0 (first order, lower_order_final).
                return [c0, c1, 0.0, 1.0, 0.0, 0.0, 0.0];
            }
            let (alpha_t, sigma_t, lambda_t) = s.vp(k - 1);
            let h = lambda_t - lambda_s;
            let a_coef = sigma_t / sigma_s;
            let b_coef = -alpha_t * ((-h).exp() - 1.0);
            // Second order (midpoint) once a previous x0 exists: D1 = (x0 - prev) / r0, r0 = h_prev / h.
            let c_coef = if i == 0 {
                0.0
            } else {
                let (_, _, lambda_prev) = s.vp(k + 1);
                let r0 = (lambda_s - lambda_prev) / h;
                0.5 * b_coef / r0
            };
            [c0, c1, a_coef, b_coef, c_coef, 0.0, 0.0]
        }
        // The flow samplers' uniforms are their stages' (`flow_stages`, `Step::set_flow_stage`), never these; dopri5
        // steps on the host (`diffusion::dopri5`).
        SamplerKind::Euler
        | SamplerKind::Heun
        | SamplerKind::EulerMaruyama
        | SamplerKind::Dopri5
        | SamplerKind::FlowMap => unreachable!("a flow sampler steps through flow_stages"),
    }
}

/// The GPU step of one sampling run: kernel, bindings and its rewritable uniform.
pub struct Step {
    pub dispatch: Dispatch,
    uniform: crate::gpu::Buffer,
    base: StepParams,
}

impl Step {
    /// For model input `x` [B, C, H, W] and output `out` [B, Cout, H, W] (B = 2N when `guided`), `noise` and `prev`
    /// [N, C, H, W].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        kind: SamplerKind,
        x: &Tensor,
        out: &Tensor,
        noise: &Tensor,
        prev: &Tensor,
        guided: bool,
        guided_channels: usize,
        scale: f32,
    ) -> Result<Step> {
        let (b, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let n = if guided { b / 2 } else { b };
        if out.dim(0) != b || noise.numel() != n * c * h * w || prev.numel() != n * c * h * w {
            return Err(Error::Config(format!(
                "sampler: x {:?}, out {:?}, noise {:?}",
                x.shape, out.shape, noise.shape
            )));
        }
        let base = StepParams {
            count: (n * c * h * w) as u32,
            chw: (c * h * w) as u32,
            hw: (h * w) as u32,
            channels: c as u32,
            out_channels: out.dim(1) as u32,
            guided: guided as u32,
            guided_channels: guided_channels as u32,
            kind: kind.code(),
            scale,
            c: [0.0; 7],
        };
        let uniform = gpu.uniform("sampler step", bytemuck::bytes_of(&base));
        let kern = Step::kernel(gpu)?;
        let res = [Res::Buf(&out.buf), Res::Buf(&noise.buf), Res::Buf(&x.buf), Res::Buf(&prev.buf)];
        let dispatch =
            gpu.dispatch_with_uniform(&kern, "sampler", &uniform, &res, grid(base.count.div_ceil(64)), 0.0)?;
        Ok(Step { dispatch, uniform, base })
    }

    /// The step's kernel, compiled once per device (also by `dit kernels --dump`).
    pub fn kernel(gpu: &Gpu) -> Result<std::rc::Rc<crate::gpu::Kernel>> {
        gpu.kernel(&KernelSpec {
            name: "sampler",
            source: &[crate::gpu::INDEX_WGSL, SOURCE],
            entry: "main",
            binds: &[Bind::Read, Bind::Read, Bind::ReadWrite, Bind::ReadWrite],
            ..Default::default()
        })
    }

    /// Writes step i's coefficients (f64 -> f32) into the uniform.
    pub fn set_coefficients(&self, gpu: &Gpu, c: [f64; 7]) {
        let p = StepParams { c: c.map(|v| v as f32), ..self.base };
        gpu.write(&self.uniform, 0, bytemuck::bytes_of(&p));
    }

    /// Writes one flow stage (its shader kind and coefficients) into the uniform, with guidance `scale` (1: the
    /// conditional output alone).
    pub fn set_flow_stage(&self, gpu: &Gpu, s: &FlowStage, scale: f32) {
        let mut c = [0.0f32; 7];
        c[0] = s.c0 as f32;
        c[1] = s.c1 as f32;
        c[2] = s.c2 as f32;
        c[3] = s.c3 as f32;
        let p = StepParams { c, kind: s.kind, scale, ..self.base };
        gpu.write(&self.uniform, 0, bytemuck::bytes_of(&p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Spacing;

    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<StepParams>(), 64);
    }

    #[test]
    fn flow_grids_are_sits() {
        // Euler over t = i/K; Heun's corrector at t_{i+1} with half steps.
        let e = flow_stages(SamplerKind::Euler, 3, 4);
        assert_eq!((e.len(), e[0].t, e[0].c0), (1, 0.75, 0.25));
        let h = flow_stages(SamplerKind::Heun, 3, 4);
        assert_eq!((h[0].t, h[1].t, h[1].kind, h[1].c0), (0.75, 1.0, FLOW_FROM_PREV, 0.125));
        // Euler-Maruyama: K - 1 noisy steps over linspace(0, 0.96, K), then the noiseless 0.04 step at 0.96.
        let k = 5;
        let first = flow_stages(SamplerKind::EulerMaruyama, 0, k)[0];
        assert_eq!(first.t, 0.0);
        assert!((first.c3 - (2.0 * 0.24f64).sqrt()).abs() < 1e-12);
        let before_last = flow_stages(SamplerKind::EulerMaruyama, k - 2, k)[0];
        assert!((before_last.t - 0.72).abs() < 1e-12);
        let last = flow_stages(SamplerKind::EulerMaruyama, k - 1, k)[0];
        assert!((last.t - 0.96).abs() < 1e-12 && last.c3 == 0.0);
        assert!((last.c0 - 0.04 * 1.96).abs() < 1e-12 && (last.c2 - 0.96).abs() < 1e-12);
        assert!(SamplerKind::parse("euler-maruyama").unwrap().stochastic());
        assert!(SamplerKind::Heun.flow() && !SamplerKind::Ddim.flow());
    }

    #[test]
    fn flow_map_grids() {
        assert_eq!(flow_map_times(4, None, 1.0).unwrap(), [1.0, 0.75, 0.5, 0.25, 0.0]);
        assert_eq!(flow_map_times(1, Some(&[1.0, 0.55, 0.0]), 1.0).unwrap(), [1.0, 0.55, 0.0]);
        // DMF's shift: t' = s t / (1 + (s - 1) t) keeps the ends.
        let s = flow_map_times(2, None, 1.5).unwrap();
        assert!((s[1] - 0.6).abs() < 1e-12 && s[0] == 1.0 && s[2] == 0.0, "{s:?}");
        for bad in [&[1.0, 0.5][..], &[0.9, 0.0], &[1.0, 0.5, 0.6, 0.0], &[1.0], &[1.0, f64::NAN, 0.0]] {
            assert!(flow_map_times(1, Some(bad), 1.0).is_err(), "{bad:?}");
        }
        assert!(flow_map_times(0, None, 1.0).is_err() && flow_map_times(2, None, 0.0).is_err());
        // A plain step jumps to the next time; a consistency step jumps to 0 and re-noises to the next time.
        let mut g = FlowMapGrid { times: vec![1.0, 0.55, 0.0], consistency: false, guidance_interval: (0.0, 1.0) };
        let (t, r, st) = flow_map_stage(&g, 0);
        assert_eq!((t, r, st.kind, st.c0, st.c1), (1.0, 0.55, FLOW_FROM_X, 0.55 - 1.0, -1.0));
        g.consistency = true;
        let (t, r, st) = flow_map_stage(&g, 0);
        assert_eq!((t, r, st.kind, st.c3), (1.0, 0.0, FLOW_SDE, 0.55));
        assert!((st.c2 - 0.45).abs() < 1e-15 && (st.c0 + 0.45).abs() < 1e-15, "{st:?}");
        let (_, r, last) = flow_map_stage(&g, 1);
        assert_eq!((r, last.c2, last.c3, last.c0), (0.0, 1.0, 0.0, -0.55));
    }

    #[test]
    fn dpm_final_step_returns_x0_and_first_step_is_first_order() {
        let s = Schedule::new(Spacing::Even(10)).unwrap();
        let first = coefficients(SamplerKind::DpmSolverPp2m, &s, 0, true);
        assert_eq!(first[4], 0.0);
        let second = coefficients(SamplerKind::DpmSolverPp2m, &s, 1, true);
        assert!(second[4] != 0.0);
        let last = coefficients(SamplerKind::DpmSolverPp2m, &s, 9, true);
        assert_eq!(&last[2..5], &[0.0, 1.0, 0.0]);
        // DDPM's last step adds no noise; its min log variance is step 1's.
        let d = coefficients(SamplerKind::Ddpm, &s, 9, true);
        assert_eq!(d[6], 0.0);
        assert_eq!(d[4], s.ddpm(1).min_log);
    }
}
