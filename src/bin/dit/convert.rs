//! `dit convert`: a checkpoint into a model directory of fp16 shards. A diffusers component folder converts its
//! weights file; a pipeline folder converts its transformer into `OUT/dit` and its VAE into `OUT/vae`.

use clap::Args;
use dit_wasm::loader::{pipeline_components, resolve_path};
use dit_wasm::weights::convert::{convert, ConvertOptions};
use dit_wasm::weights::diffusers::Arch;
use dit_wasm::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ConvertArgs {
    /// Checkpoint file (.safetensors or a PyTorch .bin / .pt): a DiT with the release's or diffusers' key names, a
    /// MeanFlow / α-Flow training snapshot (--arch meanflow) or a DMF state dict (--arch dmf), or an SD-VAE (diffusers
    /// or ldm layout); or a diffusers folder: one component (config.json + weights), or a pipeline (model_index.json),
    /// whose transformer goes to OUT/dit and VAE to OUT/vae.
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
    /// What a DiT-shaped network was trained as: `dit` (diffusion), `sit` (a flow, SiT), `meanflow` (MeanFlow /
    /// α-Flow) or `dmf` (Decoupled MeanFlow); the weights cannot tell.
    #[arg(long, default_value = "dit")]
    arch: String,
    /// A DMF's split, the first block conditioned on the end time r (20 for DMF-XL/2): the checkpoint does not hold it.
    #[arg(long)]
    dmf_depth: Option<usize>,
}

pub fn run(a: ConvertArgs) -> Result<()> {
    let arch = dit_wasm::arch::Family::parse(&a.arch)?;
    if arch == dit_wasm::arch::Family::Dmf && a.dmf_depth.is_none() {
        return Err(Error::input(
            "a DMF checkpoint does not record where its decoder blocks start: give --dmf-depth N (20 for DMF-XL/2)",
        ));
    }
    let t0 = std::time::Instant::now();
    let class_names = match a.class_names {
        Some(p) => Some(
            serde_json::from_slice::<Vec<String>>(&std::fs::read(&p).map_err(|e| Error::io(&p, e))?)
                .map_err(|e| Error::format(p.display().to_string(), format!("not a JSON list of names ({e})")))?,
        ),
        None => None,
    };
    let opts = ConvertOptions {
        shard_mib: a.shard_mib,
        heads: a.heads,
        input_size: a.input_size,
        norm_groups: a.norm_groups,
        class_names,
        arch,
        dmf_depth: a.dmf_depth,
    };
    let out = a.out.as_path();
    let inputs: Vec<PathBuf> = a.inputs.iter().map(|p| dit_wasm::hub::local_location(p)).collect::<Result<_>>()?;
    let jobs = match &inputs[..] {
        [one] => match pipeline_components(one)? {
            Some(parts) => parts
                .into_iter()
                .map(|a| (one, Some(a), out.join(if a == Arch::Dit { "dit" } else { "vae" })))
                .collect(),
            None => vec![(one, None, out.to_path_buf())],
        },
        _ => return Err(Error::input(format!("convert takes one checkpoint file or folder, got {}", inputs.len()))),
    };
    for (path, arch, out) in jobs {
        let input = resolve_path(path, arch)?;
        if input.is_dir() {
            return Err(Error::input(format!(
                "{}: a folder with no checkpoint to convert; give a checkpoint file (.safetensors, .bin, .pt) or a \
                 diffusers folder (model_index.json, or config.json + diffusion_pytorch_model.safetensors / .bin)",
                input.display()
            )));
        }
        convert_one(&input, &out, &opts, t0)?;
    }
    Ok(())
}

fn convert_one(input: &Path, out: &Path, opts: &ConvertOptions, t0: std::time::Instant) -> Result<()> {
    let idx = convert(&[input.to_path_buf()], out, opts)?;
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
