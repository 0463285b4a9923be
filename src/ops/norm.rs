//! LayerNorm without affine fused with adaLN modulate (`shaders/layernorm.wgsl`).

use super::weight::stageable;
use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, DType, Dispatch, Gpu, KernelSpec, Prelude, Res, Stage, Staging, Tensor};

const PARAMS: &str = include_str!("../../shaders/layernorm_params.wgsl");
const SOURCE: &str = include_str!("../../shaders/layernorm.wgsl");
const SOURCE_TEX: &str = include_str!("../../shaders/layernorm_tex.wgsl");
const ROWS: &str = include_str!("../../shaders/layernorm_rows.wgsl");
const TEX_X: [&str; 2] = crate::texture_decl!(1, "xt", "rgba32float");
const TEX_MOD: [&str; 2] = crate::texture_decl!(2, "mt", "rgba32float");
const GROUPNORM: &str = include_str!("../../shaders/groupnorm.wgsl");
const QK_NORM: &str = include_str!("../../shaders/qk_norm.wgsl");

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
        source: &[super::INDEX, QK_NORM],
        entry: "main",
        binds: &[Bind::Read, Bind::Read, Bind::ReadWrite],
        constants: vec![],
        prelude: Prelude::Fp16,
    })?;
    let count = (rows * 2 * (w3 / 3) / head_dim) as u32;
    let res = [Res::Buf(&q_scale.buf), Res::Buf(&k_scale.buf), Res::Buf(&qkv.buf)];
    gpu.dispatch(&kern, "qk_norm", &params, &res, grid(count.div_ceil(64)), 8.0 * (rows * 2 * w3 / 3) as f64)
}

/// GroupNorm epsilon of the SD-VAE (diffusers `AutoencoderKL`, `norm_eps` 1e-6).
pub const GN_EPS: f32 = 1e-6;

/// Uniform parameters of `groupnorm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GroupNormParams {
    pub n: u32,
    pub hw: u32,
    pub c: u32,
    pub groups: u32,
    pub eps: f32,
    /// Channel of the affine parameters that x's channel 0 is.
    pub c0: u32,
    /// 1: SiLU after the affine. A uniform, not an override constant: one pipeline serves both uses.
    pub silu: u32,
    pub _pad: u32,
}

/// `y = GroupNorm(x) * gamma + beta`, then SiLU if `silu`, over NHWC x and y [N, H, W, C] (or [N, HW, C]); `stats`
/// is scratch of at least N * groups * 2 floats. Two dispatches: statistics, then apply.
#[allow(clippy::too_many_arguments)]
pub fn group_norm(
    gpu: &Gpu,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    stats: &Tensor,
    y: &Tensor,
    groups: usize,
    silu: bool,
) -> Result<Vec<Dispatch>> {
    if gamma.shape != [x.dim(-1)] {
        return Err(Error::Op(format!("group_norm: x {:?}, affine {:?}", x.shape, gamma.shape)));
    }
    group_norm_part(gpu, x, gamma, beta, 0, stats, y, groups, silu)
}

/// [`group_norm`] over a channel part of a larger activation: x holds `groups` whole groups, its channel 0 being
/// channel `c0` of `gamma` and `beta` (a multiple of 4).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_part(
    gpu: &Gpu,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    c0: usize,
    stats: &Tensor,
    y: &Tensor,
    groups: usize,
    silu: bool,
) -> Result<Vec<Dispatch>> {
    let c = x.dim(-1);
    let n = x.dim(0);
    let hw = x.numel() / (n * c).max(1);
    let affine = gamma.numel();
    if y.shape != x.shape
        || gamma.shape != beta.shape
        || !c0.is_multiple_of(4)
        || c0 + c > affine
        || stats.numel() < n * groups * 2
    {
        return Err(Error::Op(format!(
            "group_norm: x {:?} from channel {c0}, y {:?}, affine [{affine}]",
            x.shape, y.shape
        )));
    }
    if groups == 0 || !c.is_multiple_of(groups) || !(c / groups).is_multiple_of(4) {
        return Err(Error::Op(format!(
            "group_norm: {c} channels in {groups} groups must give a multiple of 4 per group"
        )));
    }
    let params = GroupNormParams {
        n: n as u32,
        hw: hw as u32,
        c: c as u32,
        groups: groups as u32,
        eps: GN_EPS,
        c0: c0 as u32,
        silu: silu as u32,
        _pad: 0,
    };
    let spec = |entry| KernelSpec {
        name: "groupnorm",
        source: &[super::INDEX, super::REDUCE, GROUPNORM],
        entry,
        binds: &[Bind::Read, Bind::Read, Bind::Read, Bind::ReadWrite, Bind::ReadWrite],
        constants: vec![],
        prelude: Prelude::Fp16,
    };
    let res = [Res::Buf(&x.buf), Res::Buf(&gamma.buf), Res::Buf(&beta.buf), Res::Buf(&stats.buf), Res::Buf(&y.buf)];
    let stats_d =
        gpu.dispatch(&gpu.kernel(&spec("stats_main"))?, "groupnorm", &params, &res, [groups as u32, n as u32, 1], 0.0)?;
    let apply_groups = grid(((n * hw * c / 4) as u32).div_ceil(64));
    let flops = 6.0 * x.numel() as f64;
    let apply_d = gpu.dispatch(&gpu.kernel(&spec("apply_main"))?, "groupnorm", &params, &res, apply_groups, flops)?;
    Ok(vec![stats_d, apply_d])
}

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
    let flops = 8.0 * (rows * d) as f64;
    // CPU adapters (those on the texture path) take one invocation per row, reading x and mod through textures where
    // their rows can be staged (whole multiples of the 256-byte copy alignment, within the texture size limit);
    // GPUs one workgroup per row.
    let per_row = gpu.report.texture_linears;
    let staged = per_row && stageable(gpu, 4 * d, d / 4, rows) && stageable(gpu, 4 * stride, stride / 4, batch);
    if staged {
        let kern = gpu.kernel(&KernelSpec {
            name: "layernorm_tex",
            source: &[super::INDEX, PARAMS, gpu.texture_decl(TEX_X), gpu.texture_decl(TEX_MOD), SOURCE_TEX, ROWS],
            entry: "per_row",
            binds: &[Bind::TexF32, Bind::TexF32, Bind::ReadWrite],
            constants: vec![],
            prelude: Prelude::default(),
        })?;
        let (xt, xv) = gpu.staging_texture((d / 4) as u32, rows as u32, Staging::NormInput);
        let (mt, mv) = gpu.staging_texture((stride / 4) as u32, batch as u32, Staging::NormModulation);
        let groups = grid((rows as u32).div_ceil(64));
        let mut dispatch = gpu.dispatch(
            &kern,
            "layernorm",
            &params,
            &[Res::Tex(&xv), Res::Tex(&mv), Res::Buf(&y.buf)],
            groups,
            flops,
        )?;
        dispatch.stage = vec![
            Stage { src: x.buf.clone(), src_offset: 0, width: (d / 4) as u32, rows: rows as u32, dst: xt },
            Stage { src: modv.buf.clone(), src_offset: 0, width: (stride / 4) as u32, rows: batch as u32, dst: mt },
        ];
        return Ok(dispatch);
    }
    let kern = gpu.kernel(&KernelSpec {
        name: "layernorm",
        source: &[super::INDEX, super::REDUCE, PARAMS, SOURCE, if per_row { ROWS } else { "" }],
        entry: if per_row { "per_row" } else { "main" },
        binds: &[Bind::Read, Bind::Read, Bind::ReadWrite],
        constants: vec![],
        prelude: Prelude::default(),
    })?;
    gpu.dispatch(
        &kern,
        "layernorm",
        &params,
        &[Res::Buf(&x.buf), Res::Buf(&modv.buf), Res::Buf(&y.buf)],
        if per_row { grid((rows as u32).div_ceil(64)) } else { grid(rows as u32) },
        flops,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::NormParams>(), 32);
        assert_eq!(std::mem::size_of::<super::GroupNormParams>(), 32);
        assert_eq!(std::mem::size_of::<super::QkNormParams>(), 16);
    }
}
