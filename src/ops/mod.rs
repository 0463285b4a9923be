//! One folder per op family, beside its kernels in `shaders/<family>/`. Each builder validates shapes, picks its
//! kernel (the device's [`KernelPath`](crate::gpu::KernelPath) decides between the GPU and the CPU-adapter kernels)
//! and returns a [`Dispatch`](crate::gpu::Dispatch) to record (the tests hold a plain CPU reference for every kernel:
//! `tests/common/cpu.rs`).

mod attention;
mod catalogue;
mod conv;
mod embed;
mod layout;
mod linear;
mod norm;
mod patch;
mod weight;

/// `bcast4`, the subgroup broadcast the texture kernels' subgroup variants share.
const BCAST8: &str = crate::shader!("common/bcast8");
/// `flat_index` / `flat_workgroup`, the flat indices over grids folded by `gpu::grid` (kept in `gpu`: the sampler
/// step uses it too).
const INDEX: &str = crate::gpu::INDEX_WGSL;
/// `workgroup_sum` / `workgroup_max`, the workgroup tree reductions (the kernel declares `WG`).
const REDUCE: &str = crate::shader!("common/reduce");

pub use attention::{
    attention, attention_split_fits, attention_with, AttentionKernel, AttentionParams, ATTENTION_SPLITS, MAX_HEAD_DIM,
};
pub use catalogue::{compile_every_kernel, CATALOGUE_HEAD_DIMS};
pub use conv::{conv2d, conv2d_slice, Conv2d, ConvParams, ConvSlice};
pub use embed::{condition, timestep_freqs, EmbedParams, LabelMix, FREQ_DIM, LABEL_WORDS, MAX_PERIOD};
pub use layout::{nchw_to_nhwc, softmax_rows, transpose, LayoutParams, SoftmaxParams};
pub use linear::{
    linear, linear_wg_fits, matmul, wg_tile_fits, Epilogue, Linear, LinearKernel, LinearParams, WgTile, WG_TILES,
};
pub use norm::{
    group_norm, group_norm_part, layernorm_modulate, qk_rms_norm, GroupNorm, GroupNormParams, NormParams, QkNormParams,
    GN_EPS, LN_EPS, QK_NORM_EPS,
};
pub use patch::{patchify, unpatchify, PatchParams};
pub use weight::{stageable, texture_fits, PermuteParams, Weight, COPY_ROW_ALIGNMENT};
