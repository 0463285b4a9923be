//! Writes a model directory: fp16 tensors packed into safetensors shards of a bounded size, then the index.
//! Tensors are fetched one shard at a time, so converting needs memory for one shard, not the model.

use super::index::{IndexMetadata, ModelIndex, ModelKind, ShardInfo, FORMAT, FORMAT_VERSION, INDEX_FILE};
use crate::arch::TensorSpec;
use crate::error::{Error, Result};
use half::f16;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Default shard size: small enough for parallel fetches and Cache Storage entries, large enough to keep requests few.
pub const DEFAULT_SHARD_MIB: u64 = 32;

/// Orders names with embedded numbers numerically (`blocks.2` before `blocks.10`), the canonical tensor order, so
/// the same model from any source gives the same shards.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(bool, &str)> {
        let mut out = vec![];
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => x.len().cmp(&y.len()).then(x.cmp(y)),
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Assigns tensors (in canonical order) to shards of at most `shard_bytes` (a larger tensor gets a shard alone).
pub fn plan_shards(tensors: &[TensorSpec], shard_bytes: u64) -> Vec<Vec<TensorSpec>> {
    let mut sorted = tensors.to_vec();
    sorted.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let mut shards: Vec<Vec<TensorSpec>> = vec![];
    let mut cur: Vec<TensorSpec> = vec![];
    let mut cur_bytes = 0;
    for t in sorted {
        if !cur.is_empty() && cur_bytes + t.bytes() > shard_bytes {
            shards.push(std::mem::take(&mut cur));
            cur_bytes = 0;
        }
        cur_bytes += t.bytes();
        cur.push(t);
    }
    if !cur.is_empty() {
        shards.push(cur);
    }
    shards
}

/// Shard file name in the hub convention: `model-00001-of-00003.safetensors`.
pub fn shard_name(i: usize, count: usize) -> String {
    format!("model-{:05}-of-{:05}.safetensors", i + 1, count)
}

/// Serializes one shard (fp16 tensors) into safetensors bytes.
pub fn shard_bytes(tensors: &[(TensorSpec, Vec<f16>)]) -> Result<Vec<u8>> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(p, data)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F16,
                p.shape.clone(),
                bytemuck::cast_slice(data),
            )
            .map_err(|e| Error::format(&p.name, e.to_string()))?;
            Ok((p.name.clone(), view))
        })
        .collect::<Result<_>>()?;
    let meta = HashMap::from([("format".to_string(), FORMAT.to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::format("shard", e.to_string()))
}

/// Writes `dir/<shards>` and `dir/model.safetensors.index.json`. `fetch(name)` returns a tensor's values as fp16.
/// Each file is written under a temporary name and renamed, so an interrupted conversion leaves no half file.
pub fn write_model(
    dir: &Path,
    kind: ModelKind,
    config: serde_json::Value,
    extra: BTreeMap<String, serde_json::Value>,
    tensors: &[TensorSpec],
    shard_mib: u64,
    mut fetch: impl FnMut(&TensorSpec) -> Result<Vec<f16>>,
) -> Result<ModelIndex> {
    if shard_mib == 0 {
        return Err(Error::input("--shard-mib must be at least 1"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let plan = plan_shards(tensors, shard_mib << 20);
    let mut shards = BTreeMap::new();
    let mut weight_map = BTreeMap::new();
    let mut total = 0u64;
    for (i, group) in plan.iter().enumerate() {
        let name = shard_name(i, plan.len());
        let mut data = Vec::with_capacity(group.len());
        for p in group {
            let values = fetch(p)?;
            if values.len() as u64 * 2 != p.bytes() {
                return Err(Error::Shape {
                    name: p.name.clone(),
                    expected: p.shape.clone(),
                    found: vec![values.len()],
                });
            }
            total += p.bytes();
            weight_map.insert(p.name.clone(), name.clone());
            data.push((p.clone(), values));
        }
        let bytes = shard_bytes(&data)?;
        drop(data);
        let sha = hex::encode(Sha256::digest(&bytes));
        write_atomic(&dir.join(&name), &bytes)?;
        shards.insert(name, ShardInfo { size: bytes.len() as u64, sha256: sha });
    }
    let index = ModelIndex {
        metadata: IndexMetadata {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            kind,
            config,
            total_size: total,
            shards,
            extra,
        },
        weight_map,
    };
    write_atomic(&dir.join(INDEX_FILE), index.to_json().as_bytes())?;
    Ok(index)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_block_10_after_block_2() {
        let mut v = vec!["blocks.10.a", "blocks.2.a", "blocks.1.b", "final", "blocks.1.a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["blocks.1.a", "blocks.1.b", "blocks.2.a", "blocks.10.a", "final"]);
    }

    #[test]
    fn shards_respect_the_size_bound() {
        let t: Vec<TensorSpec> = (0..10).map(|i| TensorSpec { name: format!("t{i}"), shape: vec![100, 10] }).collect();
        let plan = plan_shards(&t, 4000); // 2000 bytes each: two per shard
        assert_eq!(plan.len(), 5);
        assert!(plan.iter().all(|s| s.len() == 2));
        let big = vec![TensorSpec { name: "big".into(), shape: vec![10000] }];
        assert_eq!(plan_shards(&big, 4000).len(), 1);
    }
}
