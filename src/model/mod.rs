//! Model graphs: configs, weights on the GPU, and the networks.

pub mod config;
pub mod dit;
pub mod store;
pub mod vae;

pub use config::{null_class, DitConfig};
pub use dit::{dit_tensors, pos_embed_2d, Dit, DitPlan};
pub use store::GpuWeights;
pub use vae::{vae_tensors, Vae, VaeConfig, VaePlan};
