//! Patchify / unpatchify reshapes around DiT's patch embedding and final layer (`shaders/patch/patch.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, Dispatch, Gpu, KernelSpec, Res, Tensor};

const SOURCE: &str = crate::shader!("patch/patch");

/// Uniform parameters of `patch.wgsl` (mirrors its `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PatchParams {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub p: u32,
    pub _pad: [u32; 3],
}

fn build(gpu: &Gpu, entry: &'static str, image: &[usize], p: usize, src: &Tensor, dst: &Tensor) -> Result<Dispatch> {
    let &[n, c, h, w] = image else {
        return Err(Error::Op(format!("{entry}: image shape {image:?} is not [N, C, H, W]")));
    };
    if p == 0 || h % p != 0 || w % p != 0 || src.numel() != n * c * h * w || dst.numel() != src.numel() {
        return Err(Error::Op(format!("{entry}: {:?} -> {:?} with patch {p}", src.shape, dst.shape)));
    }
    let params = PatchParams { n: n as u32, c: c as u32, h: h as u32, w: w as u32, p: p as u32, _pad: [0; 3] };
    let kern = gpu.kernel(&KernelSpec {
        name: "patch",
        source: &[crate::ops::INDEX, SOURCE],
        entry,
        binds: &[Bind::Read, Bind::ReadWrite],
        ..Default::default()
    })?;
    gpu.dispatch(
        &kern,
        "patch",
        &params,
        &[Res::Buf(&src.buf), Res::Buf(&dst.buf)],
        grid(((n * c * h * w) as u32).div_ceil(64)),
        0.0,
    )
}

/// latent [N, C, H, W] -> patches [N*T, C*p*p] in (channel, ky, kx) order.
pub fn patchify(gpu: &Gpu, x: &Tensor, patches: &Tensor, p: usize) -> Result<Dispatch> {
    build(gpu, "patchify", &x.shape, p, x, patches)
}

/// tokens [N*T, p*p*C] -> image [N, C, H, W].
pub fn unpatchify(gpu: &Gpu, tokens: &Tensor, image: &Tensor, p: usize) -> Result<Dispatch> {
    build(gpu, "unpatchify", &image.shape, p, tokens, image)
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::PatchParams>(), 32);
    }
}
