//! dit-wasm: DiT ("Scalable Diffusion Models with Transformers", Peebles & Xie) and the Stable Diffusion VAE decoder
//! on WebGPU compute shaders, natively through wgpu and in the browser through wasm.

pub mod arch;
pub mod bench;
pub mod diffusion;
pub mod error;
pub mod gpu;
pub mod hub;
pub mod loader;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod npy;
pub mod ops;
pub mod pipeline;
pub mod tune;
pub mod util;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod weights;

pub use arch::DitConfig;
pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions};
pub use model::{Dit, DitPlan, GpuWeights};
