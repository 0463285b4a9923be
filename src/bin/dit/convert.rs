//! `dit convert`: a checkpoint into a model directory of fp16 shards. A diffusers component folder converts its
//! weights file; a pipeline folder converts its transformer into `OUT/dit` and its VAE into `OUT/vae`.

use dit_wasm::loader::{pipeline_components, resolve_path};
use dit_wasm::weights::convert::{convert, ConvertOptions};
use dit_wasm::weights::diffusers::Arch;
use dit_wasm::{Error, Result};
use std::path::{Path, PathBuf};

#[allow(clippy::too_many_arguments)]
pub fn run(
    inputs: &[PathBuf],
    out: &Path,
    shard_mib: u64,
    heads: Option<usize>,
    input_size: Option<usize>,
    norm_groups: Option<usize>,
    class_names: Option<PathBuf>,
    arch: &str,
) -> Result<()> {
    let arch = dit_wasm::arch::Family::parse(arch)?;
    let t0 = std::time::Instant::now();
    let class_names = match class_names {
        Some(p) => Some(
            serde_json::from_slice::<Vec<String>>(&std::fs::read(&p).map_err(|e| Error::io(&p, e))?)
                .map_err(|e| Error::format(p.display().to_string(), format!("not a JSON list of names ({e})")))?,
        ),
        None => None,
    };
    let opts = ConvertOptions { shard_mib, heads, input_size, norm_groups, class_names, arch };
    let inputs: Vec<PathBuf> = inputs.iter().map(|p| dit_wasm::hub::local_location(p)).collect::<Result<_>>()?;
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
