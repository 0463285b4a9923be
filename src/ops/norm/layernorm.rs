//! LayerNorm without affine fused with adaLN modulate (`shaders/norm/layernorm*.wgsl`): one workgroup per row on
//! GPUs, one invocation per row with the CPU-adapter kernels (reading x and the modulation through staged textures
//! where their rows allow).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, DType, Dispatch, Gpu, KernelSpec, Res, Stage, Staging, Tensor};
use crate::ops::stageable;

const PARAMS: &str = crate::shader!("norm/layernorm_params");
const BUFFERS: &str = crate::shader!("norm/layernorm");
const TEXTURES: &str = crate::shader!("norm/layernorm_tex");
const ROWS: &str = crate::shader!("norm/layernorm_rows");
const TEX_X: [&str; 2] = crate::texture_decl!(1, "xt", "rgba32float");
const TEX_MOD: [&str; 2] = crate::texture_decl!(2, "mt", "rgba32float");

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
        || !rows.is_multiple_of(tokens)
        || y.shape != x.shape
        || x.dtype != DType::F32
        || modv.numel() != batch * stride
    {
        return Err(Error::Op(format!(
            "layernorm_modulate: x {:?}, y {:?}, mod {:?}, tokens {tokens}",
            x.shape, y.shape, modv.shape
        )));
    }
    if !d.is_multiple_of(4)
        || !stride.is_multiple_of(4)
        || !shift_off.is_multiple_of(4)
        || !scale_off.is_multiple_of(4)
        || shift_off.max(scale_off) + d > stride
    {
        return Err(Error::Op(format!(
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
    // The CPU-adapter kernels take one invocation per row, reading x and mod through textures where their rows can be
    // staged (whole multiples of the 256-byte copy alignment, within the texture size limit); GPUs one workgroup per
    // row.
    let per_row = gpu.report.kernels.textures();
    if per_row && stageable(gpu, 4 * d, d / 4, rows) && stageable(gpu, 4 * stride, stride / 4, batch) {
        return staged(gpu, x, modv, y, params);
    }
    let kern = gpu.kernel(&KernelSpec {
        name: "layernorm",
        variant: if per_row { "rows" } else { "" }.into(),
        source: &[crate::ops::INDEX, crate::ops::REDUCE, PARAMS, BUFFERS, if per_row { ROWS } else { "" }],
        entry: if per_row { "per_row" } else { "main" },
        binds: &[Bind::Read, Bind::Read, Bind::ReadWrite],
        ..Default::default()
    })?;
    let res = [Res::Buf(&x.buf), Res::Buf(&modv.buf), Res::Buf(&y.buf)];
    let groups = if per_row { grid((rows as u32).div_ceil(64)) } else { grid(rows as u32) };
    gpu.dispatch(&kern, "layernorm", &params, &res, groups, flops(&params))
}

fn flops(p: &NormParams) -> f64 {
    8.0 * p.rows as f64 * p.d as f64
}

/// One invocation per row, x and mod staged into textures by copies before the dispatch.
fn staged(gpu: &Gpu, x: &Tensor, modv: &Tensor, y: &Tensor, params: NormParams) -> Result<Dispatch> {
    let kern = gpu.kernel(&KernelSpec {
        name: "layernorm_tex",
        source: &[crate::ops::INDEX, PARAMS, gpu.texture_decl(TEX_X), gpu.texture_decl(TEX_MOD), TEXTURES, ROWS],
        entry: "per_row",
        binds: &[Bind::TexF32, Bind::TexF32, Bind::ReadWrite],
        ..Default::default()
    })?;
    let (rows, batch) = (params.rows, params.rows / params.tokens);
    let (x_width, mod_width) = (params.d / 4, params.mod_stride / 4);
    let (xt, xv) = gpu.staging_texture(x_width, rows, Staging::NormInput);
    let (mt, mv) = gpu.staging_texture(mod_width, batch, Staging::NormModulation);
    let res = [Res::Tex(&xv), Res::Tex(&mv), Res::Buf(&y.buf)];
    let mut dispatch = gpu.dispatch(&kern, "layernorm", &params, &res, grid(rows.div_ceil(64)), flops(&params))?;
    dispatch.stage = vec![
        Stage { src: x.buf.clone(), src_offset: 0, width: x_width, rows, dst: xt },
        Stage { src: modv.buf.clone(), src_offset: 0, width: mod_width, rows: batch, dst: mt },
    ];
    Ok(dispatch)
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::NormParams>(), 32);
    }
}
