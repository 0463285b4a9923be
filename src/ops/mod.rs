//! One builder per op family. Each validates shapes, picks its kernel (`shaders/*.wgsl`) and returns a
//! [`Dispatch`](crate::gpu::Dispatch) to record (the tests hold a plain CPU reference for every kernel:
//! `tests/common/cpu.rs`).

mod attention;
mod attention_gpu;
mod attention_tex;
mod conv;
mod embed;
mod layout;
mod linear;
mod linear_wg;
mod norm;
mod patch;
mod weight;

/// `bcast4`, the subgroup broadcast the texture kernels' subgroup variants share.
const BCAST8: &str = include_str!("../../shaders/common/bcast8.wgsl");
/// `flat_index` / `flat_workgroup`, the flat indices over grids folded by `gpu::grid` (kept in `gpu`: the sampler
/// step uses it too).
const INDEX: &str = crate::gpu::INDEX_WGSL;
/// `workgroup_sum` / `workgroup_max`, the workgroup tree reductions (the kernel declares `WG`).
const REDUCE: &str = include_str!("../../shaders/common/reduce.wgsl");

pub use attention::{attention, attention_split_fits, attention_with, AttentionKernel, AttentionParams, MAX_HEAD_DIM};
pub use attention_gpu::SPLITS as ATTENTION_SPLITS;
pub use conv::{conv2d, conv2d_slice, Conv2d, ConvParams, ConvSlice};
pub use embed::{condition, timestep_freqs, EmbedParams, LabelMix, FREQ_DIM, LABEL_WORDS, MAX_PERIOD};
pub use layout::{nchw_to_nhwc, softmax_rows, transpose, LayoutParams, SoftmaxParams};
pub use linear::{
    linear, linear_wg_fits, matmul, wg_tile_fits, Epilogue, Linear, LinearKernel, LinearParams, WgTile, WG_TILES,
};
pub use norm::{
    group_norm, group_norm_part, layernorm_modulate, qk_rms_norm, GroupNormParams, NormParams, QkNormParams, GN_EPS,
    LN_EPS, QK_NORM_EPS,
};
pub use patch::{patchify, unpatchify, PatchParams};
pub use weight::{stageable, texture_fits, PermuteParams, Weight, COPY_ROW_ALIGNMENT};
