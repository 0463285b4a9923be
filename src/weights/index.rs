//! The model directory index, `model.safetensors.index.json`: the sharded-safetensors convention of model hubs
//! (`weight_map`: tensor -> shard) with our `metadata`: format tag and version, model kind, config, and each shard's
//! size and sha256.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// File name of the index inside a model directory or under a base URL.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// Value of `metadata.format`.
pub const FORMAT: &str = "dit-wasm";
/// Version of the directory format; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// What a model directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Dit,
    VaeDecoder,
}

/// Size and digest of one shard file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub size: u64,
    pub sha256: String,
}

/// `metadata` of the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexMetadata {
    pub format: String,
    pub format_version: u32,
    pub kind: ModelKind,
    /// The model config (a [`DitConfig`](crate::arch::DitConfig) for `dit`).
    pub config: serde_json::Value,
    /// Total bytes of tensor data (the hub convention's `total_size`).
    pub total_size: u64,
    pub shards: BTreeMap<String, ShardInfo>,
    /// Free-form extras (class names of a demo model, the source checkpoint, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The whole index file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelIndex {
    pub metadata: IndexMetadata,
    pub weight_map: BTreeMap<String, String>,
}

impl ModelIndex {
    /// Parses and checks an index: format tag, version, and that every tensor's shard is listed.
    pub fn parse(bytes: &[u8]) -> Result<ModelIndex> {
        let bad = |m: String| Error::format(INDEX_FILE, m);
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let format = value.pointer("/metadata/format").and_then(|v| v.as_str());
        if format != Some(FORMAT) {
            return Err(bad(format!(
                "metadata.format is {format:?}, not \"{FORMAT}\"; convert the checkpoint with `dit convert` first"
            )));
        }
        let idx: ModelIndex = serde_json::from_value(value).map_err(|e| bad(format!("unexpected layout ({e})")))?;
        if idx.metadata.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                idx.metadata.format_version
            )));
        }
        for (tensor, shard) in &idx.weight_map {
            if !idx.metadata.shards.contains_key(shard) {
                return Err(bad(format!("tensor `{tensor}` is mapped to `{shard}`, which is not in metadata.shards")));
            }
        }
        for shard in idx.metadata.shards.keys() {
            if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') || !shard.ends_with(".safetensors")
            {
                return Err(bad(format!("shard name `{shard}` must be a plain `*.safetensors` file name")));
            }
        }
        Ok(idx)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("index serializes")
    }

    /// Bytes of all shards (what a download transfers).
    pub fn download_size(&self) -> u64 {
        self.metadata.shards.values().map(|s| s.size).sum()
    }
}
