//! `dit`: the native command-line tool (convert checkpoints, inspect model directories, run forwards, sample,
//! benchmark).

use clap::{Args, Parser, Subcommand, ValueEnum};
use dit_wasm::arch::{dit_tensors, DitConfig, VaeConfig};
use dit_wasm::bench::{bench_attention, bench_dit_forward, bench_linear, ForwardBench, DIT_XL_LINEARS};
use dit_wasm::diffusion::{CfgChannels, SamplerKind, Spacing};
use dit_wasm::gpu::{F16Mode, Gpu, GpuOptions, LinearPath};
use dit_wasm::model::Vae;
use dit_wasm::ops::LinearKernel;
use dit_wasm::pipeline::{self, SampleRequest};
use dit_wasm::weights::convert::{convert, ConvertOptions};
use dit_wasm::weights::{self, DirSource, ModelKind};
use dit_wasm::{npy, Dit, Error, GpuWeights, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dit", version, about = "DiT (Peebles & Xie) on WebGPU compute shaders")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the GPU adapter this machine gives: name, backend, features, limits.
    Gpu(GpuArgs),
    /// Show a model directory: kind, config, parameters, bytes; verifies every shard's sha256.
    Info {
        /// Model directory (holds model.safetensors.index.json).
        dir: PathBuf,
    },
    /// Convert a checkpoint into a model directory of fp16 shards.
    Convert {
        /// Checkpoint file: a .safetensors with the release's DiT key names, or an SD-VAE (diffusers or ldm layout).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Shard size in MiB.
        #[arg(long, default_value_t = 32)]
        shard_mib: u64,
        /// Attention heads, when depth and width are not a paper preset.
        #[arg(long)]
        heads: Option<usize>,
        /// Latent side the model runs at by default, when the checkpoint has no pos_embed (default 32 = 256 px).
        #[arg(long)]
        input_size: Option<usize>,
        /// VAE GroupNorm groups, when there is no config.json beside the checkpoint (default 32).
        #[arg(long)]
        norm_groups: Option<usize>,
        /// A JSON list of class names to store with a DiT (the page and `dit info` show them).
        #[arg(long)]
        class_names: Option<PathBuf>,
    },
    /// Run one DiT forward: x [N,C,H,W], t [N], y [N] -> out [N,Cout,H,W] (all .npy).
    Forward {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        x: PathBuf,
        #[arg(long)]
        t: PathBuf,
        #[arg(long)]
        y: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        gpu: GpuArgs,
    },
    /// Benchmark a DiT forward; prints a table, or one JSON object with --json.
    Bench(BenchArgs),
    /// Generate images of ImageNet classes (or the model's classes): DiT sampling with guidance, then the VAE.
    Sample(SampleArgs),
    /// Decode latents [N, 4, h, w] (.npy, as `sample --latent-out` writes them) into images.
    Decode {
        #[arg(long)]
        vae: PathBuf,
        #[arg(long)]
        latent: PathBuf,
        /// `.png` (a grid, clamped to 8 bits) or `.npy` ([N, 3, H, W] f32, unclamped).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        gpu: GpuArgs,
    },
}

#[derive(Args)]
struct SampleArgs {
    /// DiT model directory, or one .safetensors checkpoint (`FILE.safetensors#heads=N` when not a paper preset).
    /// Default: the embedded demo model, models/demo/dit (with its VAE, models/demo/vae).
    #[arg(long)]
    model: Option<PathBuf>,
    /// VAE decoder directory or .safetensors file (needed for a .png output).
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Class id, repeatable: one image each (the null class gives an unconditional sample).
    #[arg(long = "class", required = true, allow_negative_numbers = true)]
    classes: Vec<i64>,
    /// Guidance scale (the release samples with 4.0; 1 turns guidance off).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    cfg: f32,
    /// Steps as the release writes them: `250` (evenly respaced) or `ddim50`.
    #[arg(long, default_value = "250")]
    steps: String,
    /// ddpm (learned-variance DDPM, the paper's), ddim (eta 0) or dpmpp2m (DPM-Solver++(2M)).
    #[arg(long, default_value = "ddpm")]
    sampler: String,
    /// Guidance on eps channels 0..2 as the release does (official) or on all four (all).
    #[arg(long, default_value = "official")]
    cfg_channels: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Noise from outside, [K+1, N, C, h, w] f32: index 0 the starting latent, index i+1 the noise of step i.
    #[arg(long)]
    noise: Option<PathBuf>,
    /// Also write the final latents [N, C, h, w] here (.npy).
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

#[derive(Args, Clone)]
struct GpuArgs {
    /// How fp16 weights are read: shader-f16 when offered (auto), always packed u32, or require shader-f16.
    #[arg(long, value_enum, default_value_t = F16Arg::Auto)]
    f16: F16Arg,
    /// Where linear layers read weights and inputs: textures on CPU adapters (auto), storage buffers, or textures.
    #[arg(long, value_enum, default_value_t = LinearArg::Auto)]
    linear: LinearArg,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
enum LinearArg {
    Auto,
    Buffers,
    Textures,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
enum F16Arg {
    Auto,
    Packed,
    Native,
}

#[derive(Args)]
struct BenchArgs {
    /// Model directory to benchmark.
    #[arg(long, conflicts_with = "preset")]
    model: Option<PathBuf>,
    /// Paper preset (S/2, B/4, XL/2, ...), used with --random-weights.
    #[arg(long, requires = "random_weights")]
    preset: Option<String>,
    /// Fill the preset with random weights instead of loading a directory.
    #[arg(long)]
    random_weights: bool,
    /// Image resolution in pixels (latent = res / 8); default: the model's own.
    #[arg(long)]
    res: Option<usize>,
    /// Batch size of the forward (2 = one guided sample).
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Skip the baseline run with the simple linear kernel.
    #[arg(long)]
    no_baseline: bool,
    /// Also time generating one image: DDIM with this many steps, guidance 4, then the VAE (needs --model, --vae).
    #[arg(long, default_value_t = 0)]
    sample_steps: usize,
    /// VAE decoder directory, for --sample-steps.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Benchmark the linear kernels alone on DiT-XL/2's layer shapes (M = 512, K = 1152 or 4608, N = 1152..4608):
    /// the texture kernel, the register-tiled and the simple storage-buffer kernels, in one run.
    #[arg(long, conflicts_with_all = ["model", "preset"])]
    kernels: bool,
    /// With --kernels: time these linear shapes instead (M x K x N, comma-separated, e.g. 512x1152x3456) and skip
    /// attention.
    #[arg(long, requires = "kernels", value_delimiter = ',', value_parser = parse_shape)]
    shapes: Vec<[usize; 3]>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_runtime_dir();
    match pollster::block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Mesa's Vulkan drivers (lavapipe among them) print "error: XDG_RUNTIME_DIR is invalid or not set" when creating an
/// instance without a runtime directory, a line that is not the user's error. Where none is usable, point it at a
/// private one, as the login manager would (the scripts' env.sh does the same). Runs before any thread starts.
fn quiet_runtime_dir() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let usable = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).is_dir());
        if usable {
            return;
        }
        let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return };
        let dir = std::env::temp_dir().join(format!("dit-wasm-xdg-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Only a folder of this user's that no one else can enter (one made by another user is not trusted).
        let ours =
            std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o777 == 0o700);
        if ours {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

async fn open_gpu(a: &GpuArgs) -> Result<Gpu> {
    let f16 = match a.f16 {
        F16Arg::Auto => F16Mode::Auto,
        F16Arg::Packed => F16Mode::Packed,
        F16Arg::Native => F16Mode::Native,
    };
    let linear_path = match a.linear {
        LinearArg::Auto => LinearPath::Auto,
        LinearArg::Buffers => LinearPath::Buffers,
        LinearArg::Textures => LinearPath::Textures,
    };
    Gpu::new(&GpuOptions { f16, linear_path, ..Default::default() }).await
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Gpu(a) => {
            let gpu = open_gpu(&a).await?;
            println!("{}", serde_json::to_string_pretty(&gpu.report).expect("report serializes"));
            Ok(())
        }
        Cmd::Info { dir } => info(&dir).await,
        Cmd::Convert { inputs, out, shard_mib, heads, input_size, norm_groups, class_names } => {
            let t0 = std::time::Instant::now();
            let class_names = match class_names {
                Some(p) => Some(
                    serde_json::from_slice::<Vec<String>>(&std::fs::read(&p).map_err(|e| Error::io(&p, e))?).map_err(
                        |e| Error::format(p.display().to_string(), format!("not a JSON list of names ({e})")),
                    )?,
                ),
                None => None,
            };
            let opts = ConvertOptions { shard_mib, heads, input_size, norm_groups, class_names };
            let idx = convert(&inputs, &out, &opts)?;
            println!(
                "wrote {} ({} tensors, {} shards, {:.1} MB) in {:.1} s",
                out.display(),
                idx.weight_map.len(),
                idx.metadata.shards.len(),
                idx.download_size() as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Cmd::Forward { model, x, t, y, out, gpu } => forward(&model, &x, &t, &y, &out, &gpu).await,
        Cmd::Bench(b) => bench(b).await,
        Cmd::Sample(a) => sample(a).await,
        Cmd::Decode { vae, latent, out, gpu } => decode_cmd(&vae, &latent, &out, &gpu).await,
    }
}

/// Loads a model directory, or one `.safetensors` checkpoint used as it is (`FILE.safetensors#heads=N` for a DiT that is
/// not a paper preset; `#sha256=HEX` checks the whole file).
async fn load_weights(gpu: &Gpu, path: &Path) -> Result<(weights::ModelIndex, GpuWeights)> {
    let s = path.to_string_lossy();
    if weights::single::is_single_file(&s) {
        let (file, opts) = weights::single::parse_location(&s)?;
        GpuWeights::load_single(gpu, &weights::single::FileRange(file.into()), &opts, |_, _| {}).await
    } else {
        GpuWeights::load(gpu, &DirSource(path.to_path_buf())).await
    }
}

async fn load_vae(gpu: &Gpu, dir: &Path) -> Result<Vae> {
    let (index, w) = load_weights(gpu, dir).await?;
    if index.metadata.kind != ModelKind::VaeDecoder {
        return Err(Error::input(format!(
            "{}: holds a {:?} model, not a VAE decoder",
            dir.display(),
            index.metadata.kind
        )));
    }
    let cfg: VaeConfig = serde_json::from_value(index.metadata.config.clone())
        .map_err(|e| Error::format(weights::INDEX_FILE, format!("bad VAE config ({e})")))?;
    Vae::load(gpu, cfg, w)
}

/// Writes images [N, 3, H, W] as a .npy or as a PNG grid.
fn write_images(out: &Path, images: &[f32], n: usize, h: usize, w: usize, cols: Option<usize>) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy::write_f32(out, &[n, 3, h, w], images),
        Some("png") => {
            let rgb = dit_wasm::pipeline::to_rgb8(images, n, h, w);
            let cols = cols.unwrap_or((n as f64).sqrt().ceil() as usize).clamp(1, n);
            let rows = n.div_ceil(cols);
            let pad = 2;
            let (gw, gh) = (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad);
            let mut grid = vec![255u8; gw * gh * 3];
            for (i, img) in rgb.iter().enumerate() {
                let (ox, oy) = (pad + (i % cols) * (w + pad), pad + (i / cols) * (h + pad));
                for y in 0..h {
                    let dst = ((oy + y) * gw + ox) * 3;
                    grid[dst..dst + w * 3].copy_from_slice(&img[y * w * 3..(y + 1) * w * 3]);
                }
            }
            let f = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
            let mut enc = png::Encoder::new(std::io::BufWriter::new(f), gw as u32, gh as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let io = |e: png::EncodingError| Error::format(out.display().to_string(), e.to_string());
            enc.write_header().map_err(io)?.write_image_data(&grid).map_err(io)
        }
        _ => Err(Error::input(format!("{}: the output must end in .png or .npy", out.display()))),
    }
}

/// Checks an image or latent output before any slow work: a .png or .npy name that can be written.
fn check_output_path(out: &Path) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("png") | Some("npy") => check_writable(out),
        _ => Err(Error::input(format!("{}: the output must end in .png or .npy", out.display()))),
    }
}

/// Checks that a file can be written at `out` (an existing file opens for writing; else its folder exists and takes
/// a new file; `out` is no folder), so that a mistyped path fails at once instead of after the sampling. Nothing is
/// changed: an existing `out` is opened without truncating, and the probe file in its folder is removed.
fn check_writable(out: &Path) -> Result<()> {
    if out.is_dir() {
        return Err(Error::input(format!("{}: is a folder; give a file name", out.display())));
    }
    if out.exists() {
        return match std::fs::OpenOptions::new().write(true).open(out) {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::input(format!("{}: cannot be overwritten: {e}", out.display()))),
        };
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "{}: the folder {} does not exist; create it or choose another output path",
            out.display(),
            dir.display()
        )));
    }
    // Permission bits do not tell (root, ACLs, read-only mounts): try it.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let probe = dir.join(format!(".dit-write-probe-{}-{nanos}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::input(format!("{}: cannot write in {}: {e}", out.display(), dir.display()))),
    }
}

async fn sample(a: SampleArgs) -> Result<()> {
    // Check every argument before the (slow) model load.
    check_output_path(&a.out)?;
    if let Some(p) = &a.latent_out {
        check_writable(p)?;
    }
    let sampler = SamplerKind::parse(&a.sampler)?;
    let cfg_channels = CfgChannels::parse(&a.cfg_channels)?;
    let steps = Spacing::parse(&a.steps)?;
    steps.timesteps()?;
    if !a.cfg.is_finite() {
        return Err(Error::input(format!("--cfg {} is not a finite number", a.cfg)));
    }
    let classes: Vec<u32> = a
        .classes
        .iter()
        .map(|&c| u32::try_from(c).map_err(|_| Error::input(format!("class {c} is negative"))))
        .collect::<Result<_>>()?;
    let noise = match &a.noise {
        Some(p) => Some(npy::read_f32(p)?.data),
        None => None,
    };
    // Without --model: the embedded demo model and its VAE (paths relative to the repository root).
    let vae_dir = a.vae.clone().or_else(|| a.model.is_none().then(|| PathBuf::from("models/demo/vae")));
    let model = a.model.clone().unwrap_or_else(|| PathBuf::from("models/demo/dit"));
    if a.model.is_none() && !model.exists() {
        return Err(Error::input(format!(
            "{}: no such model; give --model DIR (the demo model is models/demo/dit in the repository)",
            model.display()
        )));
    }
    let gpu = open_gpu(&a.gpu).await?;
    let dit = load_dit(&gpu, &model).await?;
    let vae = match &vae_dir {
        Some(d) => Some(load_vae(&gpu, d).await?),
        None => None,
    };
    if vae.is_none() && a.out.extension().is_some_and(|e| e == "png") {
        return Err(Error::input("a .png output needs --vae DIR"));
    }
    let req = SampleRequest {
        classes,
        cfg_scale: a.cfg,
        steps,
        sampler,
        cfg_channels,
        seed: a.seed,
        noise,
        latent_size: None,
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
    let (n, c, h) = (req.classes.len(), dit.cfg.in_channels, dit.cfg.input_size);
    if let Some(p) = &a.latent_out {
        npy::write_f32(p, &[n, c, h, h], &latents)?;
    }
    match &vae {
        Some(v) => {
            let images = pipeline::decode(&gpu, v, &latents, n, h, h).await?;
            let s = h * v.cfg.upscale();
            write_images(&a.out, &images, n, s, s, a.cols)?;
        }
        None => npy::write_f32(&a.out, &[n, c, h, h], &latents)?,
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

async fn decode_cmd(vae_dir: &Path, latent: &Path, out: &Path, g: &GpuArgs) -> Result<()> {
    check_output_path(out)?;
    let z = npy::read_f32(latent)?;
    let &[n, c, h, w] = z.shape.as_slice() else {
        return Err(Error::input(format!("{}: latents must be [N, C, h, w], got {:?}", latent.display(), z.shape)));
    };
    let gpu = open_gpu(g).await?;
    let vae = load_vae(&gpu, vae_dir).await?;
    if c != vae.cfg.latent_channels {
        return Err(Error::input(format!(
            "{}: {c} channels, the VAE takes {}",
            latent.display(),
            vae.cfg.latent_channels
        )));
    }
    let images = pipeline::decode(&gpu, &vae, &z.data, n, h, w).await?;
    let s = vae.cfg.upscale();
    write_images(out, &images, n, h * s, w * s, None)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

async fn info(dir: &Path) -> Result<()> {
    let src = DirSource(dir.to_path_buf());
    let index = weights::read_index(&src).await?;
    let mut tensors = 0usize;
    let mut params = 0usize;
    weights::for_each_tensor(&src, &index, |_, shape, _| {
        tensors += 1;
        params += shape.iter().product::<usize>();
        Ok(())
    })
    .await?;
    let m = &index.metadata;
    println!("kind:        {:?}", m.kind);
    if let Some(p) = m.extra.get("preset") {
        println!("preset:      {}", p.as_str().unwrap_or_default());
    }
    if let Some(names) = m.extra.get("class_names").and_then(|v| v.as_array()) {
        let names: Vec<&str> = names.iter().filter_map(|v| v.as_str()).collect();
        println!("classes:     {}", names.join(", "));
    }
    println!("config:      {}", m.config);
    println!("tensors:     {tensors}");
    println!("parameters:  {params}");
    println!("bytes:       {} ({:.1} MB fp16) in {} shards", m.total_size, m.total_size as f64 / 1e6, m.shards.len());
    println!("shards:      all {} verified (sha256, size, tensors)", m.shards.len());
    if m.kind == ModelKind::Dit {
        let cfg = dit_config(&index)?;
        println!(
            "GMACs/image: {:.2} per forward at a {}x{} latent",
            cfg.macs(cfg.input_size) / 1e9,
            cfg.input_size,
            cfg.input_size
        );
    }
    Ok(())
}

fn dit_config(index: &weights::ModelIndex) -> Result<DitConfig> {
    if index.metadata.kind != ModelKind::Dit {
        return Err(Error::input(format!("this directory holds a {:?} model, not a DiT", index.metadata.kind)));
    }
    let cfg: DitConfig = serde_json::from_value(index.metadata.config.clone())
        .map_err(|e| Error::format(weights::INDEX_FILE, format!("bad DiT config ({e})")))?;
    cfg.validate()?;
    Ok(cfg)
}

async fn load_dit(gpu: &Gpu, dir: &Path) -> Result<Dit> {
    let (index, w) = load_weights(gpu, dir).await?;
    Dit::load(gpu, dit_config(&index)?, w)
}

async fn forward(model: &Path, x: &Path, t: &Path, y: &Path, out: &Path, g: &GpuArgs) -> Result<()> {
    check_writable(out)?;
    let xa = npy::read_f32(x)?;
    let ta = npy::read_f32(t)?;
    let ya = npy::read_int(y)?;
    let &[n, c, h, w] = xa.shape.as_slice() else {
        return Err(Error::input(format!("{}: x must be [N, C, H, W], got shape {:?}", x.display(), xa.shape)));
    };
    if h != w {
        return Err(Error::input(format!("{}: latent must be square, got {h}x{w}", x.display())));
    }
    for (path, shape, what) in [(t, &ta.shape, "timesteps"), (y, &ya.shape, "labels")] {
        if shape.as_slice() != [n] {
            return Err(Error::input(format!(
                "{}: {what} must have shape [{n}] to match x, got {shape:?}",
                path.display()
            )));
        }
    }
    let labels: Vec<u32> = ya
        .data
        .iter()
        .map(|&v| u32::try_from(v).map_err(|_| Error::input(format!("{}: class label {v} is negative", y.display()))))
        .collect::<Result<_>>()?;
    let gpu = open_gpu(g).await?;
    let dit = load_dit(&gpu, model).await?;
    if c != dit.cfg.in_channels {
        return Err(Error::input(format!(
            "{}: x has {c} channels, the model takes {}",
            x.display(),
            dit.cfg.in_channels
        )));
    }
    if h % dit.cfg.patch_size != 0 {
        return Err(Error::input(format!(
            "{}: latent side {h} is not a multiple of the patch size {}",
            x.display(),
            dit.cfg.patch_size
        )));
    }
    let plan = dit.plan(&gpu, n, h)?;
    let y_out = plan.forward(&gpu, &xa.data, &ta.data, &labels).await?;
    npy::write_f32(out, &plan.out.shape, &y_out)?;
    eprintln!("wrote {} {:?}", out.display(), plan.out.shape);
    Ok(())
}

/// Loads the benchmarked model: a directory, or a preset with random weights (seed 0, so every load is the same).
async fn bench_model(gpu: &Gpu, b: &BenchArgs) -> Result<(Dit, String, u64)> {
    match (&b.model, &b.preset, b.random_weights) {
        (Some(dir), None, false) => {
            let (index, w) = load_weights(gpu, dir).await?;
            let bytes = w.bytes();
            Ok((Dit::load(gpu, dit_config(&index)?, w)?, dir.display().to_string(), bytes))
        }
        (None, Some(preset), true) => {
            let cfg = DitConfig::preset(preset, b.res.unwrap_or(256))?;
            let w = GpuWeights::random(gpu, &dit_tensors(&cfg), 0)?;
            let bytes = w.bytes();
            let name = cfg.preset_name().unwrap_or_else(|| preset.clone());
            Ok((Dit::load(gpu, cfg, w)?, name, bytes))
        }
        _ => Err(Error::input("give --model DIR, or --preset NAME --random-weights")),
    }
}

/// Runs one benchmark of a model's forward; returns the timings, whether the output was finite, and activation bytes.
async fn bench_forward(gpu: &Gpu, dit: &Dit, b: &BenchArgs, latent: usize) -> Result<(ForwardBench, bool, u64)> {
    let r = bench_dit_forward(gpu, dit, b.batch, latent, b.warmup, b.repeat).await?;
    Ok((r.bench, r.finite, r.activation_bytes))
}

async fn bench(b: BenchArgs) -> Result<()> {
    if b.batch == 0 {
        return Err(Error::input("--batch must be at least 1"));
    }
    let gpu = open_gpu(&b.gpu).await?;
    if b.kernels {
        return bench_linears(&gpu, &b).await;
    }
    let (dit, name, weight_bytes) = bench_model(&gpu, &b).await?;
    let latent = b.res.map_or(dit.cfg.input_size, |r| r / 8);
    let (main, finite, activation_bytes) = bench_forward(&gpu, &dit, &b, latent).await?;
    // The baseline: the same model with weights in storage buffers and the simple linear kernel, same run.
    let baseline = if b.no_baseline {
        None
    } else {
        let base_args = GpuArgs { linear: LinearArg::Buffers, ..b.gpu.clone() };
        let base_gpu = open_gpu(&base_args).await?;
        let (mut base_dit, _, _) = bench_model(&base_gpu, &b).await?;
        base_dit.set_linear_kernel(LinearKernel::Simple);
        Some(bench_forward(&base_gpu, &base_dit, &b, latent).await?.0)
    };
    let generate = if b.sample_steps > 0 {
        let vae_dir = b.vae.as_ref().ok_or_else(|| Error::input("--sample-steps needs --vae DIR"))?;
        let vae = load_vae(&gpu, vae_dir).await?;
        let mut req = SampleRequest::new(vec![0]);
        req.steps = Spacing::Even(b.sample_steps);
        req.sampler = SamplerKind::Ddim;
        let mut times = vec![];
        for _ in 0..2 {
            let t0 = std::time::Instant::now();
            let z = pipeline::sample(&gpu, &dit, &req, |_| true).await?;
            pipeline::decode(&gpu, &vae, &z, 1, latent, latent).await?;
            times.push(t0.elapsed().as_secs_f64());
        }
        Some(
            serde_json::json!({ "steps": b.sample_steps, "sampler": "ddim", "cfg": 4.0, "seconds_first": times[0], "seconds": times[1] }),
        )
    } else {
        None
    };
    let report = serde_json::json!({
        "model": name,
        "generate_one_image": generate,
        "resolution": latent * 8,
        "latent": latent,
        "batch": b.batch,
        "adapter": main.adapter,
        "linear_path": gpu.report.linear_path(),
        "tuned": gpu.tuned_all().iter().map(|(op, s, c)| match *op {
            "linear" => format!("linear {}x{}x{}: {}", s[0], s[2], s[1], dit_wasm::ops::WG_TILES[*c]),
            _ => {
                let (qw, g) = dit_wasm::ops::ATTENTION_SPLITS[*c];
                format!("attention {}x{}x{}x{}: {qw} queries x {g} key groups", s[0], s[1], s[2], s[3])
            }
        }).collect::<Vec<_>>(),
        "ms_per_forward": main.ms_per_forward,
        "gflops_per_s": main.gflops_per_s,
        "gflop_per_forward": main.gflop_per_forward,
        "paper_gmacs_per_image": dit.cfg.macs(latent) / 1e9,
        "dispatches_per_forward": main.dispatches_per_forward,
        "weight_bytes": weight_bytes,
        "activation_bytes": activation_bytes,
        "output_finite": finite,
        "timer": main.timer,
        "ops": main.ops,
        "ms_runs": main.ms_runs,
        "baseline": baseline.as_ref().map(|bb| baseline_json(&main, bb)),
    });
    if b.json {
        println!("{report}");
    } else {
        print_table(&report, &main, baseline.as_ref());
    }
    if !finite {
        return Err(Error::Gpu("the forward produced NaN or infinity".into()));
    }
    Ok(())
}

/// One `--shapes` entry: `MxKxN`, M positive, K and N multiples of 4.
fn parse_shape(s: &str) -> std::result::Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split('x')
        .map(|d| d.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{s}` is not MxKxN (e.g. 512x1152x3456)"))?;
    match v[..] {
        [m, k, n] if m > 0 && k > 0 && n > 0 && k % 4 == 0 && n % 4 == 0 && m * k.max(n) <= 1 << 26 => Ok([m, k, n]),
        _ => Err(format!("`{s}`: need MxKxN with M, K, N positive, K and N multiples of 4, at most 64M elements")),
    }
}

/// `dit bench --kernels`: every linear kernel on DiT-XL/2's shapes.
async fn bench_linears(gpu: &Gpu, b: &BenchArgs) -> Result<()> {
    let mut all = vec![];
    let shapes: Vec<[usize; 3]> = if b.shapes.is_empty() {
        DIT_XL_LINEARS.iter().map(|&(m, k, n)| [m, k, n]).collect()
    } else {
        b.shapes.clone()
    };
    for [m, k, n] in shapes {
        all.push(bench_linear(gpu, m, k, n, b.repeat).await?);
    }
    // DiT-XL/2's attention at 256 px, batch 2: 256 tokens, 16 heads of 72.
    let attention = if b.shapes.is_empty() { bench_attention(gpu, 2, 256, 16, 72, b.repeat).await? } else { vec![] };
    if b.json {
        println!("{}", serde_json::json!({ "adapter": gpu.report, "linear": all, "attention": attention }));
        return Ok(());
    }
    println!(
        "linear kernels on {}, {} ({}, fp16 {})",
        if b.shapes.is_empty() { "DiT-XL/2's shapes" } else { "the given shapes" },
        gpu.report.name,
        gpu.report.backend,
        gpu.report.f16_weights_path
    );
    println!("{:<20} {:<30} {:>10} {:>10} {:>22}", "M x K x N", "kernel", "ms", "GFLOP/s", "vs register-tiled");
    for r in &all {
        for t in &r.kernels {
            println!(
                "{:<20} {:<30} {:>10.2} {:>10.2} {:>21.2}x",
                format!("{} x {} x {}", r.m, r.k, r.n),
                t.kernel,
                t.ms,
                t.gflops_per_s,
                t.vs_register_tiled
            );
        }
    }
    if attention.is_empty() {
        return Ok(());
    }
    println!("attention, DiT-XL/2 at 256 px (batch 2, 256 tokens, 16 heads of 72)");
    println!("{:<20} {:<30} {:>10} {:>10} {:>22}", "", "kernel", "ms", "GFLOP/s", "vs per-query");
    for t in &attention {
        println!("{:<20} {:<30} {:>10.3} {:>10.2} {:>21.2}x", "", t.kernel, t.ms, t.gflops_per_s, t.vs_register_tiled);
    }
    Ok(())
}

fn baseline_json(main: &ForwardBench, base: &ForwardBench) -> serde_json::Value {
    let lin = |b: &ForwardBench| b.ops.get("linear").map_or(0.0, |o| o.gflops_per_s);
    serde_json::json!({
        "linear_kernel": "simple (storage buffers, 1x4 outputs per thread)",
        "ms_per_forward": base.ms_per_forward,
        "linear_gflops_per_s": lin(base),
        "forward_speedup": base.ms_per_forward / main.ms_per_forward,
        "linear_speedup": if lin(base) > 0.0 { lin(main) / lin(base) } else { 0.0 },
    })
}

fn print_table(r: &serde_json::Value, main: &ForwardBench, base: Option<&ForwardBench>) {
    println!(
        "{} at a {}x{} latent, batch {} on {} ({}, linear layers on {}, fp16 {})",
        r["model"].as_str().unwrap_or_default(),
        r["latent"],
        r["latent"],
        r["batch"],
        main.adapter.name,
        main.adapter.backend,
        r["linear_path"].as_str().unwrap_or_default(),
        main.adapter.f16_weights_path
    );
    println!(
        "forward: {:.1} ms (median of {}), {:.2} GFLOP/s, {} dispatches, weights {:.1} MB, activations {:.1} MB",
        main.ms_per_forward,
        main.ms_runs.len(),
        main.gflops_per_s,
        main.dispatches_per_forward,
        r["weight_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        r["activation_bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    if let Some(tuned) = r["tuned"].as_array().filter(|t| !t.is_empty()) {
        let tuned: Vec<&str> = tuned.iter().filter_map(|t| t.as_str()).collect();
        println!(
            "kernel choices, tuned at load or kept from an earlier run \
             (linear M x K x N, attention batch x tokens x heads x head dim):"
        );
        for t in tuned {
            println!("  {t}");
        }
    }
    println!("{:<12} {:>10} {:>10} {:>10} {:>12}   ({})", "op", "dispatches", "ms", "GFLOP", "GFLOP/s", main.timer);
    for (op, t) in &main.ops {
        println!("{op:<12} {:>10} {:>10.2} {:>10.3} {:>12.2}", t.dispatches, t.ms, t.gflop, t.gflops_per_s);
    }
    if let Some(g) = r["generate_one_image"].as_object() {
        println!(
            "one image, {} DDIM steps with guidance + VAE decode: {:.2} s (first run, with shader compile: {:.2} s)",
            g["steps"],
            g["seconds"].as_f64().unwrap_or(0.0),
            g["seconds_first"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(b) = base {
        let v = baseline_json(main, b);
        println!(
            "baseline (simple buffer linear kernel, same run): {:.1} ms per forward, linear {:.2} GFLOP/s -> {:.2}x faster (linear {:.2}x)",
            b.ms_per_forward,
            v["linear_gflops_per_s"].as_f64().unwrap_or(0.0),
            v["forward_speedup"].as_f64().unwrap_or(0.0),
            v["linear_speedup"].as_f64().unwrap_or(0.0)
        );
    }
}
