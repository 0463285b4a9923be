//! LayerNorm without affine fused with adaLN modulate (`shaders/layernorm.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, DType, Dispatch, Gpu, KernelSpec, Res, Tensor};

const SOURCE: &str = include_str!("../../shaders/layernorm.wgsl");

/// LayerNorm epsilon of DiT's norms (`nn.LayerNorm(..., elementwise_affine=False, eps=1e-6)` in the release's models.py).
pub const LN_EPS: f32 = 1e-6;

/// Uniform parameters of `layernorm.wgsl` (mirrors its `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NormParams {
    pub rows: u32,
    pub d: u32,
    pub tokens: u32,
    pub mod_stride: u32,
    pub shift_off: u32,
    pub scale_off: u32,
    pub eps: f32,
    pub _pad: u32,
}

/// `y = LN(x) * (1 + scale) + shift` with shift/scale read from `modv` [batch, stride] at column offsets
/// `shift_off` / `scale_off`; x and y are [batch * tokens, D].
pub fn layernorm_modulate(
    gpu: &Gpu,
    x: &Tensor,
    modv: &Tensor,
    y: &Tensor,
    tokens: usize,
    shift_off: usize,
    scale_off: usize,
) -> Result<Dispatch> {
    let d = x.dim(-1);
    let rows = x.numel() / d;
    let stride = modv.dim(-1);
    let batch = rows / tokens.max(1);
    if tokens == 0
        || rows % tokens != 0
        || y.shape != x.shape
        || x.dtype != DType::F32
        || modv.numel() != batch * stride
    {
        return Err(Error::Config(format!(
            "layernorm_modulate: x {:?}, y {:?}, mod {:?}, tokens {tokens}",
            x.shape, y.shape, modv.shape
        )));
    }
    if d % 4 != 0
        || stride % 4 != 0
        || shift_off % 4 != 0
        || scale_off % 4 != 0
        || shift_off.max(scale_off) + d > stride
    {
        return Err(Error::Config(format!(
            "layernorm_modulate: width {d} / offsets must be multiples of 4 within {stride}"
        )));
    }
    let params = NormParams {
        rows: rows as u32,
        d: d as u32,
        tokens: tokens as u32,
        mod_stride: stride as u32,
        shift_off: shift_off as u32,
        scale_off: scale_off as u32,
        eps: LN_EPS,
        _pad: 0,
    };
    let kern = gpu.kernel(&KernelSpec {
        name: "layernorm",
        source: &[SOURCE],
        entry: "main",
        binds: &[Bind::Read, Bind::Read, Bind::ReadWrite],
        constants: vec![],
    })?;
    gpu.dispatch(
        &kern,
        "layernorm",
        &params,
        &[Res::Buf(&x.buf), Res::Buf(&modv.buf), Res::Buf(&y.buf)],
        grid(rows as u32),
        8.0 * (rows * d) as f64,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::NormParams>(), 32);
    }
}
