//! `dit info`: what a model holds. A model directory has its shards verified; a checkpoint file or a diffusers
//! folder (a pipeline shows its DiT and its VAE) is read as the loader reads it, by byte ranges, every tensor the
//! model uses planned, read and rounded to fp16.

use dit_wasm::arch::Family;
use dit_wasm::loader::{dit_config, pipeline_components, resolve_path};
use dit_wasm::weights::single::{load_single, parse_location, FileRange};
use dit_wasm::weights::{self, DirSource, ModelIndex, ModelKind};
use dit_wasm::Result;
use std::path::Path;

pub async fn run(path: &Path) -> Result<()> {
    let path = &dit_wasm::hub::local_location(path)?;
    if let Some(parts) = pipeline_components(path)? {
        for (i, arch) in parts.into_iter().enumerate() {
            if i > 0 {
                println!();
            }
            let file = resolve_path(path, Some(arch))?;
            println!("component:   {arch:?} ({})", file.display());
            single(&file).await?;
        }
        return Ok(());
    }
    let resolved = resolve_path(path, None)?;
    // A missing path reads as a model directory, whose error names every kind of model.
    if resolved.is_dir() || (!resolved.exists() && !weights::single::is_single_file(&resolved.to_string_lossy())) {
        return dir(&resolved).await;
    }
    single(&resolved).await
}

/// One checkpoint file, read as `dit sample` reads it.
async fn single(file: &Path) -> Result<()> {
    let s = file.to_string_lossy();
    let (name, opts) = parse_location(&s)?;
    let src = FileRange(name.into());
    let (mut tensors, mut params, mut read) = (0usize, 0usize, 0u64);
    let index = load_single(
        &src,
        &opts,
        |_, shape, _| {
            tensors += 1;
            params += shape.iter().product::<usize>();
            Ok(())
        },
        |r, _| read = r,
    )
    .await?;
    let size = std::fs::metadata(name).map(|m| m.len()).unwrap_or(0);
    show(&index, tensors, params, &s)?;
    println!("read:        {read} of the file's {size} bytes (the tensors the model uses)");
    Ok(())
}

/// A model directory written by `dit convert`, every shard verified.
async fn dir(dir: &Path) -> Result<()> {
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
    show(&index, tensors, params, &dir.display().to_string())?;
    println!("shards:      all {} verified (sha256, size, tensors)", m.shards.len());
    Ok(())
}

fn show(index: &ModelIndex, tensors: usize, params: usize, what: &str) -> Result<()> {
    let m = &index.metadata;
    println!("kind:        {:?}", m.kind);
    if let Some(p) = m.extra.get("preset") {
        println!("preset:      {}", p.as_str().unwrap_or_default());
    }
    if let Some(names) = m.extra.get("class_names").and_then(|v| v.as_array()) {
        let names: Vec<&str> = names.iter().filter_map(|v| v.as_str()).collect();
        println!("classes:     {}", names.join(", "));
    }
    // The latent statistics are a few thousand numbers: shown as a line of their own below.
    let mut config = m.config.clone();
    if let Some(o) = config.as_object_mut() {
        o.remove("latent_stats");
    }
    println!("config:      {config}");
    println!("tensors:     {tensors}");
    println!("parameters:  {params}");
    if m.shards.is_empty() {
        println!("bytes:       {} ({:.1} MB fp16)", m.total_size, m.total_size as f64 / 1e6);
    } else {
        println!(
            "bytes:       {} ({:.1} MB fp16) in {} shards",
            m.total_size,
            m.total_size as f64 / 1e6,
            m.shards.len()
        );
    }
    if m.kind == ModelKind::Dit {
        let cfg = dit_config(index, what)?;
        println!(
            "model:       {} ({})",
            cfg.arch.name(),
            match cfg.arch {
                Family::Sit => "a flow: euler, heun, euler-maruyama, dopri5",
                Family::Meanflow | Family::Dmf => "a flow map: flowmap, 1 to 8 jumps, guidance trained in",
                Family::Dit => "a diffusion: ddpm, ddim, dpmpp2m",
            }
        );
        if let Some(k) = cfg.dmf_depth {
            println!("dmf depth:   {k} (blocks {k}..{} and the final layer see the end time r)", cfg.depth);
        }
        if let Some(s) = &cfg.latent_stats {
            println!(
                "latents:     standardised per element by {} means and variances (autoencoder_mean / _var)",
                s.mean.len()
            );
        }
        println!(
            "GMACs/image: {:.2} per forward at a {}x{} latent",
            cfg.macs(cfg.input_size) / 1e9,
            cfg.input_size,
            cfg.input_size
        );
    }
    Ok(())
}
