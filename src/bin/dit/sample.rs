//! `dit sample`: class-conditional images, DiT sampling with guidance and then the VAE.

use crate::gpu::{open_gpu, GpuArgs};
use crate::output::{check_output_path, check_writable, write_images};
use clap::Args;
use dit_wasm::diffusion::{CfgChannels, SamplerKind, Spacing};
use dit_wasm::loader;
use dit_wasm::pipeline::{self, Blend, SampleRequest};
use dit_wasm::{npy, Error, Result};
use std::path::PathBuf;

/// The model `dit sample` uses without `--model`, and its VAE (relative to the repository root).
const DEMO_MODEL: &str = "models/demo/flowmap";
const DEMO_VAE: &str = "models/demo/vae";

#[derive(Args)]
pub struct SampleArgs {
    /// DiT model directory, one checkpoint (.safetensors, or a PyTorch .bin / .pt; `FILE#heads=N` when not a paper
    /// preset, `FILE#arch=sit` for a SiT), a diffusers folder: a pipeline (model_index.json; its vae/ is the default VAE) or the transformer
    /// component, or a Hub location hf://OWNER/NAME[@REVISION][/SUBFOLDER] (HF_ENDPOINT, HF_HOME as the Hub's tools).
    /// Default: the embedded flow-map demo, models/demo/flowmap (one step; the DiT demo is models/demo/dit), with the
    /// demo VAE, models/demo/vae.
    #[arg(long)]
    model: Option<PathBuf>,
    /// VAE decoder directory, checkpoint, diffusers folder or hf:// location (needed for a .png output; default: a
    /// pipeline's vae/).
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Class id, repeatable: one image each (the null class gives an unconditional sample).
    #[arg(long = "class", required = true, allow_negative_numbers = true)]
    classes: Vec<i64>,
    /// Blend every image's class with this class in the label embedding: (1 - alpha) * embed(class) + alpha *
    /// embed(blend). A real class (not the null class).
    #[arg(long, allow_negative_numbers = true)]
    blend: Option<i64>,
    /// The blend's weight in [0, 1] (0: --class alone, 1: --blend alone); 0.5 when --blend is given without it.
    #[arg(long, allow_negative_numbers = true)]
    alpha: Option<f32>,
    /// Guidance scale (the release samples with 4.0; 1 turns guidance off). A flow map's guidance is trained in: 1 by
    /// default; a scale above 1 doubles the batch and guides all channels inside --guidance-interval.
    #[arg(long, allow_negative_numbers = true)]
    cfg: Option<f32>,
    /// Steps as the release writes them: `250` (evenly respaced, the default) or `ddim50`; a flow sampler: K solver
    /// steps; a flow map: K jumps over the uniform grid from 1 to 0 (1 by default).
    #[arg(long)]
    steps: Option<String>,
    /// A flow map's custom grid from 1 (noise) down to 0 (data), comma-separated (α-Flow's 2 steps: 1,0.55,0).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    grid: Option<Vec<f64>>,
    /// α-Flow's consistency steps: each jump goes to t = 0 and the state is re-noised to the next time with fresh
    /// noise (the noise of step i is --noise index i + 1).
    #[arg(long)]
    consistency: bool,
    /// Time shift of a flow map's grid, t' = s t / (1 + (s - 1) t) (DMF's 512 px model samples with 1.5).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    shift: f64,
    /// Where a flow map's guidance scale above 1 applies, `LO,HI` in t (default: the interval the model was trained
    /// to guide in: DMF 0,0.7; MeanFlow / α-Flow 0,0.75).
    #[arg(long, value_delimiter = ',', num_args = 1, allow_negative_numbers = true)]
    guidance_interval: Option<Vec<f64>>,
    /// A DiT: ddpm (learned-variance DDPM, the paper's; the default), ddim (eta 0) or dpmpp2m (DPM-Solver++(2M)).
    /// A SiT (a flow): euler (the default) or heun, ODE solvers over a uniform grid from t = 0 (noise) to 1 (data),
    /// or euler-maruyama (SiT's SDE: K - 1 noisy steps to t = 0.96, then a last noiseless step of 0.04), or dopri5
    /// (SiT's default ODE solver: adaptive steps with atol 1e-6, rtol 1e-3; --steps is not used).
    /// A MeanFlow / α-Flow or DMF model (a flow map): flowmap (the default; see --grid, --consistency, --shift).
    #[arg(long)]
    sampler: Option<String>,
    /// Guidance on eps channels 0..2 as the release does (official) or on all four (all).
    #[arg(long, default_value = pipeline::DEFAULT_CFG_CHANNELS)]
    cfg_channels: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Noise from outside, [K+1, N, C, h, w] f32: index 0 the starting latent, index i+1 the noise of step i.
    #[arg(long)]
    noise: Option<PathBuf>,
    /// Also write the final latents [N, C, h, w] here (.npy), in the model's own space (before a flow map's latent
    /// statistics or the VAE's scale).
    #[arg(long)]
    latent_out: Option<PathBuf>,
    /// `.png` (a grid of the images) or `.npy` ([N, 3, H, W] f32).
    #[arg(long)]
    out: PathBuf,
    /// Columns of the PNG grid (default: about the square root of the image count).
    #[arg(long)]
    cols: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// The run's options, checked before the (slow) model load; what needs the model is checked after it.
struct Checked {
    sampler: Option<SamplerKind>,
    cfg_channels: CfgChannels,
    steps: Option<Spacing>,
    flow_map: pipeline::FlowMapOptions,
    classes: Vec<u32>,
    blend: Option<Blend>,
    noise: Option<Vec<f32>>,
}

fn check_args(a: &SampleArgs) -> Result<Checked> {
    check_output_path(&a.out)?;
    if let Some(p) = &a.latent_out {
        check_writable(p)?;
    }
    let sampler = a.sampler.as_deref().map(SamplerKind::parse).transpose()?;
    let cfg_channels = CfgChannels::parse(&a.cfg_channels)?;
    let steps = a.steps.as_deref().map(Spacing::parse).transpose()?;
    if let Some(s) = steps {
        s.timesteps()?;
    }
    if let Some(cfg) = a.cfg.filter(|c| !c.is_finite()) {
        return Err(Error::input(format!("--cfg {cfg} is not a finite number")));
    }
    let guidance_interval = match a.guidance_interval.as_deref() {
        None => None,
        Some(&[lo, hi]) => Some((lo, hi)),
        Some(v) => return Err(Error::input(format!("--guidance-interval takes LO,HI (two times), got {v:?}"))),
    };
    let flow_map = pipeline::FlowMapOptions {
        grid: a.grid.clone(),
        consistency: a.consistency,
        shift: a.shift,
        guidance_interval,
    };
    let steps = match (&a.grid, steps) {
        (Some(g), Some(Spacing::Even(k))) if k + 1 != g.len() => {
            return Err(Error::input(format!("--steps {k} and a --grid of {} steps disagree: give one", g.len() - 1)))
        }
        (Some(g), _) => Some(Spacing::Even(g.len().saturating_sub(1))),
        (None, s) => s,
    };
    let classes: Vec<u32> = a
        .classes
        .iter()
        .map(|&c| u32::try_from(c).map_err(|_| Error::input(format!("class {c} is negative"))))
        .collect::<Result<_>>()?;
    let blend = match (a.blend, a.alpha) {
        (None, Some(_)) => return Err(Error::input("--alpha needs --blend B (the class to blend with)")),
        (None, None) => None,
        (Some(b), alpha) => Some(Blend {
            with: u32::try_from(b).map_err(|_| Error::input(format!("blend class {b} is negative")))?,
            alpha: alpha.unwrap_or(pipeline::DEFAULT_BLEND_ALPHA),
        }),
    };
    if let Some(b) = &blend {
        b.check_alpha()?; // the class range needs the model: checked after the load
    }
    let noise = match &a.noise {
        Some(p) => Some(npy::read_f32(p)?.data),
        None => None,
    };
    Ok(Checked { sampler, cfg_channels, steps, flow_map, classes, blend, noise })
}

/// The DiT's and the VAE's locations. Without --model: the embedded demo model and its VAE (paths relative to the
/// repository root). A diffusers pipeline brings its own VAE unless --vae names another (the loader's rule).
fn locations(a: &SampleArgs) -> Result<(String, Option<String>)> {
    let vae = a.vae.as_ref().map(|v| v.to_string_lossy().into_owned());
    match &a.model {
        Some(m) => Ok((m.to_string_lossy().into_owned(), vae)),
        None if !std::path::Path::new(DEMO_MODEL).exists() => Err(Error::input(format!(
            "{DEMO_MODEL}: no such model; give --model DIR (the demo models are models/demo/flowmap and \
             models/demo/dit in the repository)"
        ))),
        None => {
            eprintln!(
                "using the embedded demo model {DEMO_MODEL} (a flow map: one step, guidance trained in) with \
                 {DEMO_VAE}; the DiT demo is --model models/demo/dit"
            );
            Ok((DEMO_MODEL.to_string(), Some(vae.unwrap_or_else(|| DEMO_VAE.to_string()))))
        }
    }
}

pub async fn run(a: SampleArgs) -> Result<()> {
    // Check every argument before the (slow) model load.
    let c = check_args(&a)?;
    let (model, vae) = locations(&a)?;
    let gpu = open_gpu(&a.gpu).await?;
    // Each model is checked against the device's limits (the DiT at this run's batch, the VAE at the DiT's latent
    // size) before its weights are read; without --cfg, as if guided (the family, and so its default, is not known yet).
    let batch = pipeline::dit_batch(c.classes.len(), a.cfg.unwrap_or(pipeline::DEFAULT_CFG_SCALE));
    let req = loader::Request { dit: &model, vae: vae.as_deref(), batch, need_vae: false };
    let loader::Models { dit, vae, .. } = loader::models(&loader::Origin::new(), &gpu, &req).await?;
    if vae.is_none() && a.out.extension().is_some_and(|e| e == "png") {
        return Err(Error::input("a .png output needs --vae DIR"));
    }
    let family = dit.cfg.arch;
    let sampler = c.sampler.unwrap_or_else(|| pipeline::default_sampler(family));
    pipeline::check_sampler(family, sampler)?;
    let fm = &c.flow_map;
    if !sampler.flow_map() && (fm.grid.is_some() || fm.consistency || fm.shift != 1.0 || fm.guidance_interval.is_some())
    {
        return Err(Error::input(
            "--grid, --consistency, --shift and --guidance-interval are for a flow map's sampler",
        ));
    }
    let req = SampleRequest {
        classes: c.classes,
        blend: c.blend,
        cfg_scale: a.cfg.unwrap_or_else(|| pipeline::default_cfg_scale(family)),
        steps: c.steps.unwrap_or_else(|| pipeline::default_steps(family)),
        sampler,
        cfg_channels: c.cfg_channels,
        seed: a.seed,
        noise: c.noise,
        latent_size: None,
        flow_map: c.flow_map,
    };
    let bar = if a.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("valid template"),
    );
    let latents = pipeline::sample(&gpu, &dit, &req, |s| {
        bar.set_length(s.total as u64);
        bar.set_position(s.step as u64);
        bar.set_message(format!("{:.0} ms/step  t={}", 1e3 * s.elapsed / s.step as f64, s.timestep));
        true
    })
    .await?;
    bar.finish_and_clear();
    let (n, ch, h) = (req.classes.len(), dit.cfg.in_channels, dit.cfg.input_size);
    if let Some(p) = &a.latent_out {
        npy::write_f32(p, &[n, ch, h, h], &latents)?;
    }
    match &vae {
        Some(v) => {
            let vae_latents = pipeline::to_vae_latents(&dit.cfg, v.cfg.scaling_factor, &latents);
            let images = pipeline::decode(&gpu, v, &vae_latents, n, h, h).await?;
            let s = h * v.cfg.upscale();
            write_images(&a.out, &images, n, s, s, a.cols)?;
        }
        None => npy::write_f32(&a.out, &[n, ch, h, h], &latents)?,
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
