//! Reads a model directory's index and shards from any byte source, checks each shard's sha256 before use, and hands
//! its fp16 tensors to a callback one shard at a time (peak memory: one shard).

use super::index::{ModelIndex, INDEX_FILE};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

/// Where model files come from: a directory, memory, or (in the browser) a base URL.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// A short description for messages (`models/demo`, `https://...`).
    fn describe(&self) -> String;
    /// The bytes of one file of the model (the index or a shard).
    async fn read(&self, file: &str) -> Result<Vec<u8>>;

    /// The bytes of one shard, checked against its size and sha256 in the index before they are used. Sources with
    /// a cache override this to replace a corrupt cached copy.
    async fn read_shard(&self, index: &ModelIndex, shard: &str) -> Result<Vec<u8>> {
        let bytes = self.read(shard).await?;
        verify_shard(index, shard, &bytes)?;
        Ok(bytes)
    }
}

/// A model directory on disk.
#[cfg(not(target_arch = "wasm32"))]
pub struct DirSource(pub std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl Source for DirSource {
    fn describe(&self) -> String {
        self.0.display().to_string()
    }
    async fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.0.join(file);
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && file == INDEX_FILE {
                Error::format(
                    self.describe(),
                    format!(
                        "no {INDEX_FILE} here; a model is a directory written by `dit convert`, a diffusers folder \
                         (model_index.json, or config.json + diffusion_pytorch_model.safetensors / .bin) or one \
                         checkpoint file"
                    ),
                )
            } else {
                Error::io(&path, e)
            }
        })
    }
}

/// Model files held in memory (tests, or bytes handed over by the embedding page).
pub struct MemorySource(pub HashMap<String, Vec<u8>>);

impl Source for MemorySource {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn read(&self, file: &str) -> Result<Vec<u8>> {
        self.0.get(file).cloned().ok_or_else(|| Error::format(file, "not among the in-memory model files"))
    }
}

/// Reads and parses the index.
pub async fn read_index<S: Source>(src: &S) -> Result<ModelIndex> {
    ModelIndex::parse(&src.read(INDEX_FILE).await?)
}

/// Checks a shard's size and sha256 against the index.
pub fn verify_shard(index: &ModelIndex, shard: &str, bytes: &[u8]) -> Result<()> {
    let info = index.metadata.shards.get(shard).ok_or_else(|| Error::format(shard, "not listed in the index"))?;
    if bytes.len() as u64 != info.size {
        return Err(Error::format(
            shard,
            format!("has {} bytes, the index says {}; the file is truncated or was changed", bytes.len(), info.size),
        ));
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if !actual.eq_ignore_ascii_case(&info.sha256) {
        return Err(Error::Integrity { file: shard.into(), expected: info.sha256.clone(), actual });
    }
    Ok(())
}

/// Calls `on_tensor(name, shape, fp16 bytes)` for every tensor, after verifying each shard. Shards are fetched two at a
/// time (downloads overlap) and handed over one at a time: at most two shards are in memory, never the model.
pub async fn for_each_tensor<S: Source>(
    src: &S,
    index: &ModelIndex,
    mut on_tensor: impl FnMut(&str, &[usize], &[u8]) -> Result<()>,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    let names: Vec<&String> = index.metadata.shards.keys().collect();
    for pair in names.chunks(2) {
        let fetched = match pair {
            [a, b] => {
                let (x, y) = futures_util::future::join(src.read_shard(index, a), src.read_shard(index, b)).await;
                vec![(*a, x?), (*b, y?)]
            }
            [a] => vec![(*a, src.read_shard(index, a).await?)],
            _ => unreachable!("chunks of two"),
        };
        for (shard, bytes) in fetched {
            let st = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| Error::format(shard, format!("not a valid safetensors file ({e})")))?;
            for (name, view) in st.iter() {
                if index.weight_map.get(name).map(String::as_str) != Some(shard.as_str()) {
                    return Err(Error::format(
                        shard,
                        format!("holds tensor `{name}`, which the index does not map to it"),
                    ));
                }
                if view.dtype() != safetensors::Dtype::F16 {
                    return Err(Error::format(
                        shard,
                        format!("tensor `{name}` is {:?}; model directories hold F16", view.dtype()),
                    ));
                }
                on_tensor(name, view.shape(), view.data())?;
                seen.insert(name.to_string());
            }
        }
    }
    if let Some(missing) = index.weight_map.keys().find(|k| !seen.contains(*k)) {
        return Err(Error::format(
            &index.weight_map[missing],
            format!("does not contain tensor `{missing}` listed in the index"),
        ));
    }
    Ok(())
}
