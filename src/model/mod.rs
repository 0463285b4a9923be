//! Model graphs over weights on the GPU (the configs and tensor manifests they read are in `arch`).

pub mod dit;
mod dit_fit;
pub mod store;
pub mod vae;

pub use dit::{Dit, DitPlan};
pub use store::GpuWeights;
pub use vae::{Vae, VaePlan};
