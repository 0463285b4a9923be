//! Normalisations (`shaders/norm/`): DiT's LayerNorm fused with adaLN modulate (`layernorm.rs`), the VAE's
//! GroupNorm (`groupnorm.rs`), and the q/k RMSNorm of DiTs with `qk_norm` (`qk_norm.rs`).

mod groupnorm;
mod layernorm;
mod qk_norm;

pub use groupnorm::{group_norm, group_norm_part, GroupNorm, GroupNormParams, GN_EPS};
pub use layernorm::{layernorm_modulate, NormParams, LN_EPS};
pub use qk_norm::{qk_rms_norm, QkNormParams, QK_NORM_EPS};
