//! Layout changes and the row softmax (`shaders/layout/layout.wgsl`, `shaders/layout/softmax.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, Dispatch, Gpu, KernelSpec, Res, Tensor};

const LAYOUT: &str = crate::shader!("layout/layout");
const SOFTMAX: &str = crate::shader!("layout/softmax");

/// Uniform parameters of `layout.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LayoutParams {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub scale: f32,
    pub _pad: [u32; 3],
}

/// Uniform parameters of `softmax.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub cols: u32,
    pub scale: f32,
    pub _pad: u32,
}

fn layout_kernel(
    gpu: &Gpu,
    entry: &'static str,
    params: &LayoutParams,
    src: &Tensor,
    dst: &Tensor,
    count: usize,
) -> Result<Dispatch> {
    let kern = gpu.kernel(&KernelSpec {
        name: "layout",
        source: &[crate::ops::INDEX, LAYOUT],
        entry,
        binds: &[Bind::Read, Bind::ReadWrite],
        ..Default::default()
    })?;
    gpu.dispatch(
        &kern,
        "layout",
        params,
        &[Res::Buf(&src.buf), Res::Buf(&dst.buf)],
        grid((count as u32).div_ceil(64)),
        0.0,
    )
}

/// dst [N, H, W, C] = src [N, C, H, W] * scale.
pub fn nchw_to_nhwc(gpu: &Gpu, src: &Tensor, dst: &Tensor, scale: f32) -> Result<Dispatch> {
    let &[n, c, h, w] = src.shape.as_slice() else {
        return Err(Error::Op(format!("nchw_to_nhwc: {:?} is not 4-D", src.shape)));
    };
    if dst.shape != [n, h, w, c] {
        return Err(Error::Op(format!("nchw_to_nhwc: {:?} -> {:?}", src.shape, dst.shape)));
    }
    let p = LayoutParams { n: n as u32, c: c as u32, h: h as u32, w: w as u32, scale, _pad: [0; 3] };
    layout_kernel(gpu, "nchw_to_nhwc", &p, src, dst, src.numel())
}

/// dst [cols, rows] = src [rows, cols]^T.
pub fn transpose(gpu: &Gpu, src: &Tensor, dst: &Tensor) -> Result<Dispatch> {
    let (rows, cols) = (src.dim(0), src.dim(-1));
    if src.numel() != rows * cols || dst.shape != [cols, rows] {
        return Err(Error::Op(format!("transpose: {:?} -> {:?}", src.shape, dst.shape)));
    }
    let p = LayoutParams { n: 1, c: 1, h: rows as u32, w: cols as u32, scale: 1.0, _pad: [0; 3] };
    layout_kernel(gpu, "transpose", &p, src, dst, src.numel())
}

/// s[r, :] = softmax(scale * s[r, :]) in place, s [rows, cols] f32.
pub fn softmax_rows(gpu: &Gpu, s: &Tensor, scale: f32) -> Result<Dispatch> {
    let (rows, cols) = (s.dim(0), s.dim(-1));
    let p = SoftmaxParams { rows: rows as u32, cols: cols as u32, scale, _pad: 0 };
    let kern = gpu.kernel(&KernelSpec {
        name: "softmax",
        source: &[crate::ops::INDEX, crate::ops::REDUCE, SOFTMAX],
        entry: "main",
        binds: &[Bind::ReadWrite],
        ..Default::default()
    })?;
    gpu.dispatch(&kern, "softmax", &p, &[Res::Buf(&s.buf)], grid(rows as u32), 5.0 * (rows * cols) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_structs() {
        assert_eq!(std::mem::size_of::<super::LayoutParams>(), 32);
        assert_eq!(std::mem::size_of::<super::SoftmaxParams>(), 16);
    }
}
