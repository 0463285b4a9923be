//! RMSNorm of every head's q and k in place in the fused qkv activation (`shaders/norm/qk_norm.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, DType, Dispatch, Gpu, KernelSpec, Res, Tensor};

const QK_NORM: &str = crate::shader!("norm/qk_norm");

/// Epsilon of the q/k RMSNorm (timm's `RMSNorm` default, as Decoupled MeanFlow's `models/layers.py` builds it).
pub const QK_NORM_EPS: f32 = 1e-6;

/// Uniform parameters of `qk_norm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct QkNormParams {
    pub rows: u32,
    pub dim: u32,
    pub head_dim: u32,
    pub eps: f32,
}

/// RMSNorm of every head's q and k in place in `qkv` [rows, 3D] (q, k, v in that order, heads of `head_dim`), each
/// scaled by its fp16 `q_scale` / `k_scale` [head_dim].
pub fn qk_rms_norm(gpu: &Gpu, qkv: &Tensor, q_scale: &Tensor, k_scale: &Tensor, head_dim: usize) -> Result<Dispatch> {
    let w3 = qkv.dim(-1);
    let rows = qkv.numel() / w3.max(1);
    if qkv.dtype != DType::F32
        || !w3.is_multiple_of(3)
        || head_dim == 0
        || !head_dim.is_multiple_of(4)
        || !(w3 / 3).is_multiple_of(head_dim)
        || q_scale.shape != [head_dim]
        || k_scale.shape != [head_dim]
    {
        return Err(Error::Op(format!(
            "qk_rms_norm: qkv {:?}, scales {:?} and {:?}, head dim {head_dim}",
            qkv.shape, q_scale.shape, k_scale.shape
        )));
    }
    let params = QkNormParams { rows: rows as u32, dim: (w3 / 3) as u32, head_dim: head_dim as u32, eps: QK_NORM_EPS };
    let kern = gpu.kernel(&KernelSpec {
        name: "qk_norm",
        source: &[crate::ops::INDEX, QK_NORM],
        entry: "main",
        binds: &[Bind::Read, Bind::Read, Bind::ReadWrite],
        ..Default::default()
    })?;
    let count = (rows * 2 * (w3 / 3) / head_dim) as u32;
    let res = [Res::Buf(&q_scale.buf), Res::Buf(&k_scale.buf), Res::Buf(&qkv.buf)];
    gpu.dispatch(&kern, "qk_norm", &params, &res, grid(count.div_ceil(64)), 8.0 * (rows * 2 * w3 / 3) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::QkNormParams>(), 16);
    }
}
