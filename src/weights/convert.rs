//! `dit convert`: checkpoints -> model directory. The config is inferred from tensor shapes and checked against the
//! architecture; tensors are read one at a time, rounded to fp16 and written in bounded shards.

#![cfg(not(target_arch = "wasm32"))]

use super::index::{ModelIndex, ModelKind};
use super::input::{to_f16, SafetensorsFile, SrcDType, SrcTensor};
use super::writer::{write_model, DEFAULT_SHARD_MIB};
use crate::error::{Error, Result};
use crate::model::{dit_tensors, pos_embed_2d, DitConfig};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Options of `dit convert`.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub shard_mib: u64,
    /// Attention heads, needed when depth and width are not a paper preset.
    pub heads: Option<usize>,
    /// Latent side, when the checkpoint has no `pos_embed` to read it from (default 32, i.e. 256 px).
    pub input_size: Option<usize>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions { shard_mib: DEFAULT_SHARD_MIB, heads: None, input_size: None }
    }
}

/// A checkpoint opened for conversion: its tensors, read one at a time as f32.
pub trait Checkpoint {
    fn describe(&self) -> String;
    fn tensors(&self) -> &[SrcTensor];
    fn read_f32(&mut self, t: &SrcTensor) -> Result<Vec<f32>>;
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
    if &magic == b"PK\x03\x04" {
        return Err(Error::format(
            path.display().to_string(),
            "is a PyTorch zip checkpoint; this build converts .safetensors files only",
        ));
    }
    Ok(Box::new(SafetensorsFile::open(path)?))
}

/// Converts checkpoint files into a model directory at `out`.
pub fn convert(inputs: &[PathBuf], out: &Path, opts: &ConvertOptions) -> Result<ModelIndex> {
    let [input] = inputs else {
        return Err(Error::input(format!("convert takes one checkpoint file, got {}", inputs.len())));
    };
    let mut ck = open_checkpoint(input)?;
    if ck.tensors().iter().any(|t| t.name == "x_embedder.proj.weight") {
        convert_dit(ck.as_mut(), out, opts)
    } else {
        Err(Error::format(
            ck.describe(),
            "not a recognised checkpoint: expected DiT tensors with the release's names (x_embedder.proj.weight, blocks.0.attn.qkv.weight, ...)",
        ))
    }
}

fn shape_of<'a>(by_name: &HashMap<&str, &'a SrcTensor>, name: &str) -> Result<&'a [usize]> {
    by_name.get(name).map(|t| t.shape.as_slice()).ok_or_else(|| Error::MissingTensor(name.into()))
}

/// Reads the DiT config off the tensor shapes of a checkpoint with the release's names.
pub fn infer_dit_config(tensors: &[SrcTensor], opts: &ConvertOptions) -> Result<DitConfig> {
    let by_name: HashMap<&str, &SrcTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let bad = |m: String| Error::Config(m);
    let &[d, c, p, p2] = shape_of(&by_name, "x_embedder.proj.weight")? else {
        return Err(bad("x_embedder.proj.weight is not [D, C, p, p]".into()));
    };
    if p != p2 {
        return Err(bad(format!("non-square patch {p}x{p2}")));
    }
    let depth = tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blocks.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1);
    let &[final_rows, _] = shape_of(&by_name, "final_layer.linear.weight")? else {
        return Err(bad("final_layer.linear.weight is not 2-D".into()));
    };
    let cout = final_rows / (p * p);
    let learn_sigma = match cout {
        x if x == 2 * c => true,
        x if x == c => false,
        _ => return Err(bad(format!("final layer gives {cout} channels for {c} input channels"))),
    };
    let &[rows, _] = shape_of(&by_name, "y_embedder.embedding_table.weight")? else {
        return Err(bad("y_embedder.embedding_table.weight is not 2-D".into()));
    };
    let &[mlp, _] = shape_of(&by_name, "blocks.0.mlp.fc1.weight")? else {
        return Err(bad("blocks.0.mlp.fc1.weight is not 2-D".into()));
    };
    let num_heads = match (opts.heads, DitConfig::preset_heads(depth, d)) {
        (Some(h), _) => h,
        (None, Some(h)) => h,
        (None, None) => {
            return Err(Error::input(format!(
                "depth {depth} and width {d} are not a DiT preset: pass --heads N (head dim = {d} / N)"
            )))
        }
    };
    let from_pos = by_name.get("pos_embed").and_then(|t| {
        let g = (t.shape.get(1).copied().unwrap_or(0) as f64).sqrt() as usize;
        (g * g == t.shape.get(1).copied().unwrap_or(0)).then_some(g * p)
    });
    let cfg = DitConfig {
        depth,
        hidden_size: d,
        num_heads,
        patch_size: p,
        in_channels: c,
        learn_sigma,
        num_classes: rows.saturating_sub(1),
        input_size: opts.input_size.or(from_pos).unwrap_or(32),
        mlp_ratio: mlp as f64 / d as f64,
    };
    cfg.validate()?;
    Ok(cfg)
}

fn convert_dit(ck: &mut dyn Checkpoint, out: &Path, opts: &ConvertOptions) -> Result<ModelIndex> {
    let tensors = ck.tensors().to_vec();
    let cfg = infer_dit_config(&tensors, opts)?;
    let planned = dit_tensors(&cfg);
    let by_name: HashMap<&str, &SrcTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    for p in &planned {
        let t = by_name.get(p.name.as_str()).ok_or_else(|| Error::MissingTensor(p.name.clone()))?;
        if t.shape != p.shape {
            return Err(Error::Shape { name: p.name.clone(), expected: p.shape.clone(), found: t.shape.clone() });
        }
    }
    let known: std::collections::HashSet<&str> = planned.iter().map(|p| p.name.as_str()).collect();
    for t in &tensors {
        if t.name == "pos_embed" {
            check_pos_embed(ck, t, &cfg)?;
        } else if !known.contains(t.name.as_str()) {
            return Err(Error::format(
                ck.describe(),
                format!("unexpected tensor `{}` for {} blocks of width {}", t.name, cfg.depth, cfg.hidden_size),
            ));
        }
    }
    let mut extra = BTreeMap::new();
    if let Some(name) = cfg.preset_name() {
        extra.insert("preset".to_string(), serde_json::Value::from(name));
    }
    let config = serde_json::to_value(&cfg).expect("config serializes");
    write_model(out, ModelKind::Dit, config, extra, &planned, opts.shard_mib, |p| {
        let t = by_name[p.name.as_str()];
        to_f16(&p.name, &ck.read_f32(t)?)
    })
}

/// The release stores the fixed position embedding; it must be the 2D sin-cos one that the model computes.
fn check_pos_embed(ck: &mut dyn Checkpoint, t: &SrcTensor, cfg: &DitConfig) -> Result<()> {
    let g = cfg.input_size / cfg.patch_size;
    if t.shape != [1, g * g, cfg.hidden_size] {
        return Err(Error::Shape {
            name: t.name.clone(),
            expected: vec![1, g * g, cfg.hidden_size],
            found: t.shape.clone(),
        });
    }
    let stored = ck.read_f32(t)?;
    let ours = pos_embed_2d(cfg.hidden_size, g);
    let diff = stored.iter().zip(&ours).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    // |values| <= 1: allow the rounding of the stored dtype.
    let tol = match t.dtype {
        SrcDType::F16 => 1e-3,
        SrcDType::BF16 => 8e-3,
        SrcDType::F32 | SrcDType::F64 => 1e-4,
    };
    if diff > tol {
        return Err(Error::format(
            ck.describe(),
            format!("pos_embed differs from the fixed 2D sin-cos embedding by {diff}; this is not a DiT checkpoint this project can run"),
        ));
    }
    Ok(())
}
