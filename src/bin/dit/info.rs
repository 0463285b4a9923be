//! `dit info`: what a model directory holds, its shards verified.

use dit_wasm::loader::dit_config;
use dit_wasm::weights::{self, DirSource, ModelKind};
use dit_wasm::Result;
use std::path::Path;

pub async fn run(dir: &Path) -> Result<()> {
    let dir = &dit_wasm::hub::local_location(dir)?;
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
        let cfg = dit_config(&index, &dir.display().to_string())?;
        println!(
            "GMACs/image: {:.2} per forward at a {}x{} latent",
            cfg.macs(cfg.input_size) / 1e9,
            cfg.input_size,
            cfg.input_size
        );
    }
    Ok(())
}
