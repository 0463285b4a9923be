//! Loading models: a directory or one checkpoint file, as a DiT or a VAE decoder.

use dit_wasm::arch::{DitConfig, VaeConfig};
use dit_wasm::gpu::Gpu;
use dit_wasm::model::Vae;
use dit_wasm::weights::{self, DirSource, ModelKind};
use dit_wasm::{Dit, Error, GpuWeights, Result};
use std::path::Path;

/// Loads a model directory, or one `.safetensors` checkpoint used as it is (`FILE.safetensors#heads=N` for a DiT that is
/// not a paper preset; `#sha256=HEX` checks the whole file).
pub async fn load_weights(gpu: &Gpu, path: &Path) -> Result<(weights::ModelIndex, GpuWeights)> {
    let s = path.to_string_lossy();
    if weights::single::is_single_file(&s) {
        let (file, opts) = weights::single::parse_location(&s)?;
        GpuWeights::load_single(gpu, &weights::single::FileRange(file.into()), &opts, |_, _| {}).await
    } else {
        GpuWeights::load(gpu, &DirSource(path.to_path_buf())).await
    }
}

pub async fn load_vae(gpu: &Gpu, dir: &Path) -> Result<Vae> {
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

pub fn dit_config(index: &weights::ModelIndex) -> Result<DitConfig> {
    if index.metadata.kind != ModelKind::Dit {
        return Err(Error::input(format!("this directory holds a {:?} model, not a DiT", index.metadata.kind)));
    }
    let cfg: DitConfig = serde_json::from_value(index.metadata.config.clone())
        .map_err(|e| Error::format(weights::INDEX_FILE, format!("bad DiT config ({e})")))?;
    cfg.validate()?;
    Ok(cfg)
}

pub async fn load_dit(gpu: &Gpu, dir: &Path) -> Result<Dit> {
    let (index, w) = load_weights(gpu, dir).await?;
    Dit::load(gpu, dit_config(&index)?, w)
}
