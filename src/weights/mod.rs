//! Model directories: sharded fp16 safetensors with an index (format in `index`), the converter that writes them
//! from checkpoints, and the loader that reads them from any byte source; single checkpoints read in place
//! (`single`: safetensors, and PyTorch zips through `torchzip`) and diffusers folders (`diffusers`).

pub mod convert;
pub mod diffusers;
pub mod index;
pub mod input;
pub mod load;
pub mod pickle;
pub mod plan;
pub mod range;
pub mod single;
pub mod torchzip;
#[cfg(target_arch = "wasm32")]
pub mod url;
pub mod writer;

pub use index::{ModelIndex, ModelKind, INDEX_FILE};
#[cfg(not(target_arch = "wasm32"))]
pub use load::DirSource;
pub use load::{for_each_tensor, read_index, verify_shard, MemorySource, Source};
