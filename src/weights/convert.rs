//! `dit convert`: checkpoints -> model directory. The config is inferred from tensor shapes and checked against the
//! architecture; tensors are read one at a time, rounded to fp16 and written in bounded shards.

#![cfg(not(target_arch = "wasm32"))]

use super::index::ModelIndex;
use super::input::{decode_f32, to_f16, SafetensorsFile, SrcTensor};
pub use super::plan::{
    check_pos_embed, diffusers_dit_parts, infer_dit_config, infer_vae_config, plan, set_latent_stats,
    vae_canonical_name, ConvertOptions,
};
use super::range::{FileRange, RangeSource};
use super::torchzip::open_zip;
use super::torchzip::{self, TorchZip};
use super::writer::write_model;
use crate::arch::TensorSpec;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A checkpoint opened for conversion: its tensors, read one at a time as f32.
pub trait Checkpoint {
    fn describe(&self) -> String;
    fn tensors(&self) -> &[SrcTensor];
    fn read_f32(&mut self, t: &SrcTensor) -> Result<Vec<f32>>;
}

/// A PyTorch zip checkpoint (`.pt`, `.bin`), read by the same ranged reader as the loader: one storage entry at a
/// time, never the whole file.
pub struct PtFile {
    src: FileRange,
    zip: TorchZip,
}

impl PtFile {
    pub fn open(path: &Path) -> Result<PtFile> {
        let src = FileRange(path.to_path_buf());
        let zip = pollster::block_on(async { open_zip(&src, src.size().await?).await })?;
        Ok(PtFile { src, zip })
    }
}

impl Checkpoint for PtFile {
    fn describe(&self) -> String {
        self.src.describe()
    }
    fn tensors(&self) -> &[SrcTensor] {
        &self.zip.tensors
    }
    fn read_f32(&mut self, t: &SrcTensor) -> Result<Vec<f32>> {
        let e = self.zip.entry_of(t);
        let span = pollster::block_on(self.src.read_range(e.header, e.end))?;
        let at = torchzip::data_offset(&self.src.describe(), e, &span)?;
        let from = at + t.offset as usize * t.dtype.size(); // checked against the entry's size by open
        Ok(decode_f32(&t.name, t.dtype, &span[from..from + t.numel() * t.dtype.size()]))
    }
}

impl Checkpoint for SafetensorsFile {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
    fn tensors(&self) -> &[SrcTensor] {
        &self.tensors
    }
    fn read_f32(&mut self, t: &SrcTensor) -> Result<Vec<f32>> {
        SafetensorsFile::read_f32(self, t)
    }
}

/// Opens a checkpoint file by its content.
pub fn open_checkpoint(path: &Path) -> Result<Box<dyn Checkpoint>> {
    let mut magic = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let _ = f.read(&mut magic).map_err(|e| Error::io(path, e))?;
    }
    if magic[..3] == *super::single::LEGACY_TORCH {
        return Err(super::single::legacy_torch(&path.display().to_string()));
    }
    if &magic == b"PK\x03\x04" {
        return Ok(Box::new(PtFile::open(path)?));
    }
    Ok(Box::new(SafetensorsFile::open(path)?))
}

/// Converts checkpoint files into a model directory at `out`.
pub fn convert(inputs: &[PathBuf], out: &Path, opts: &ConvertOptions) -> Result<ModelIndex> {
    let [input] = inputs else {
        return Err(Error::input(format!("convert takes one checkpoint file, got {}", inputs.len())));
    };
    let mut ck = open_checkpoint(input)?;
    let config_json = match input.parent().map(|d| d.join("config.json")).filter(|p| p.is_file()) {
        Some(p) => {
            let v = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).map_err(|e| Error::io(&p, e))?)
                .map_err(|e| Error::format(p.display().to_string(), format!("not valid JSON ({e})")))?;
            super::diffusers::classify_value(&p.display().to_string(), &v, None)?;
            Some(v)
        }
        None => None,
    };
    let mut plan = plan(&ck.describe(), ck.tensors(), config_json.as_ref(), opts)?;
    if let Some((mean, var)) = plan.latent_stats.clone() {
        let (mean, var) = (ck.read_f32(&mean)?, ck.read_f32(&var)?);
        set_latent_stats(&mut plan, mean, var)?;
    }
    if let Some((t, cfg)) = &plan.pos_embed {
        let stored = ck.read_f32(t)?;
        check_pos_embed(&ck.describe(), t, &stored, cfg)?;
    }
    let planned: Vec<TensorSpec> = plan.items.iter().map(|i| i.planned.clone()).collect();
    let parts: HashMap<&str, &Vec<SrcTensor>> =
        plan.items.iter().map(|i| (i.planned.name.as_str(), &i.parts)).collect();
    write_model(out, plan.kind, plan.config.clone(), plan.extra.clone(), &planned, opts.shard_mib, |p| {
        let mut values = vec![];
        for part in parts[p.name.as_str()] {
            values.extend(ck.read_f32(part)?);
        }
        to_f16(&p.name, &values)
    })
}
