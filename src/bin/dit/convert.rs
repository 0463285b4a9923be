//! `dit convert`: a checkpoint into a model directory of fp16 shards.

use dit_wasm::weights::convert::{convert, ConvertOptions};
use dit_wasm::{Error, Result};
use std::path::{Path, PathBuf};

pub fn run(
    inputs: &[PathBuf],
    out: &Path,
    shard_mib: u64,
    heads: Option<usize>,
    input_size: Option<usize>,
    norm_groups: Option<usize>,
    class_names: Option<PathBuf>,
) -> Result<()> {
    let t0 = std::time::Instant::now();
    let class_names = match class_names {
        Some(p) => Some(
            serde_json::from_slice::<Vec<String>>(&std::fs::read(&p).map_err(|e| Error::io(&p, e))?)
                .map_err(|e| Error::format(p.display().to_string(), format!("not a JSON list of names ({e})")))?,
        ),
        None => None,
    };
    let opts = ConvertOptions { shard_mib, heads, input_size, norm_groups, class_names };
    let inputs: Vec<PathBuf> = inputs.iter().map(|p| dit_wasm::hub::local_location(p)).collect::<Result<_>>()?;
    let inputs = &inputs[..];
    let idx = convert(inputs, out, &opts)?;
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
