//! One builder per op family. Each validates shapes, picks its kernel (`shaders/*.wgsl`) and returns a
//! [`Dispatch`](crate::gpu::Dispatch) to record; [`cpu`] holds a plain reference for every kernel.

mod attention;
pub mod cpu;
mod embed;
mod linear;
mod norm;
mod patch;

pub use attention::{attention, AttentionParams, MAX_HEAD_DIM};
pub use embed::{condition, timestep_freqs, EmbedParams, FREQ_DIM, MAX_PERIOD};
pub use linear::{linear, Epilogue, Linear, LinearKernel, LinearParams, Weight};
pub use norm::{layernorm_modulate, NormParams, LN_EPS};
pub use patch::{patchify, unpatchify, PatchParams};
