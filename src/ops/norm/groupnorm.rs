//! GroupNorm (+ SiLU) over NHWC activations, the SD-VAE decoder's norms (`shaders/norm/groupnorm.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, Dispatch, Gpu, KernelSpec, Res, Tensor};

const GROUPNORM: &str = crate::shader!("norm/groupnorm");

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

/// One GroupNorm as the decoder applies it: its fp16 affine parameters [C], its groups (in the channels that x
/// holds) and whether SiLU follows.
#[derive(Clone, Copy)]
pub struct GroupNorm<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub groups: usize,
    pub silu: bool,
}

/// `y = GroupNorm(x) * gamma + beta`, then SiLU if `norm.silu`, over NHWC x and y [N, H, W, C] (or [N, HW, C]);
/// `stats` is scratch of at least N * groups * 2 floats. Two dispatches: statistics, then apply.
pub fn group_norm(gpu: &Gpu, norm: &GroupNorm<'_>, x: &Tensor, stats: &Tensor, y: &Tensor) -> Result<Vec<Dispatch>> {
    if norm.gamma.shape != [x.dim(-1)] {
        return Err(Error::Op(format!("group_norm: x {:?}, affine {:?}", x.shape, norm.gamma.shape)));
    }
    group_norm_part(gpu, norm, 0, x, stats, y)
}

/// [`group_norm`] over a channel part of a larger activation: x holds `norm.groups` whole groups, its channel 0
/// being channel `c0` of the affine parameters (a multiple of 4).
pub fn group_norm_part(
    gpu: &Gpu,
    norm: &GroupNorm<'_>,
    c0: usize,
    x: &Tensor,
    stats: &Tensor,
    y: &Tensor,
) -> Result<Vec<Dispatch>> {
    let &GroupNorm { gamma, beta, groups, silu } = norm;
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
    let (n, hw, c, groups) = (n as u32, hw as u32, c as u32, groups as u32);
    let params = GroupNormParams { n, hw, c, groups, eps: GN_EPS, c0: c0 as u32, silu: silu as u32, _pad: 0 };
    let spec = |entry| KernelSpec {
        name: "groupnorm",
        source: &[crate::ops::INDEX, crate::ops::REDUCE, GROUPNORM],
        entry,
        binds: &[Bind::Read, Bind::Read, Bind::Read, Bind::ReadWrite, Bind::ReadWrite],
        ..Default::default()
    };
    let res = [Res::Buf(&x.buf), Res::Buf(&gamma.buf), Res::Buf(&beta.buf), Res::Buf(&stats.buf), Res::Buf(&y.buf)];
    let stats_d = gpu.dispatch(&gpu.kernel(&spec("stats_main"))?, "groupnorm", &params, &res, [groups, n, 1], 0.0)?;
    let apply_groups = grid((n * hw * c / 4).div_ceil(64));
    let flops = 6.0 * x.numel() as f64;
    let apply_d = gpu.dispatch(&gpu.kernel(&spec("apply_main"))?, "groupnorm", &params, &res, apply_groups, flops)?;
    Ok(vec![stats_d, apply_d])
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::GroupNormParams>(), 32);
    }
}
