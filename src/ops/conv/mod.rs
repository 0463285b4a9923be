//! 2D convolution as an implicit GEMM over NHWC activations (`shaders/conv/conv.wgsl`), with the decoder's nearest x2
//! upsample and the ResNet residual fused in.

use super::weight::{permute, texture_fits, Weight};
use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, DType, Dispatch, Gpu, KernelSpec, Res, Tensor};

const CONV: &str = crate::shader!("conv/conv");
const WEIGHTS_BUF: &str = crate::shader!("conv/weights_buf");
const WEIGHTS_TEX: &str = crate::shader!("conv/weights_tex");
const TEX_W: [&str; 2] = crate::texture_decl!(2, "wtex", "rgba16float");

/// Uniform parameters of `conv.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvParams {
    pub n: u32,
    pub oh: u32,
    pub ow: u32,
    pub cin: u32,
    pub cout: u32,
    pub ksize: u32,
    pub pad: u32,
    /// Bit 0: add `res`; bit 1: accumulate into y (no bias); bit 2: read the input upsampled x2 (nearest).
    pub flags: u32,
    pub wcin: u32,
    pub ci0: u32,
    pub co0: u32,
    pub _pad: u32,
}

/// A square convolution with stride 1 and "same" zero padding, weights reordered to [Cout_pad, KH, KW, Cin] fp16
/// (in a buffer, or in a texture on the texture path) and the bias padded to Cout_pad = Cout rounded up to 4.
pub struct Conv2d {
    weight: Weight,
    bias: Tensor,
    pub cin: usize,
    pub cout: usize,
    pub cout_pad: usize,
    pub ksize: usize,
}

impl Conv2d {
    /// From PyTorch-layout fp16 weights `w` [Cout, Cin, K, K] and bias [Cout].
    pub fn new(gpu: &Gpu, w: &Tensor, b: &Tensor) -> Result<Conv2d> {
        let &[cout, cin, k, k2] = w.shape.as_slice() else {
            return Err(Error::Op(format!("conv weight has shape {:?}, expected [Cout, Cin, K, K]", w.shape)));
        };
        if k != k2 || k % 2 == 0 || cin % 4 != 0 || b.shape != [cout] || w.dtype != DType::F16 {
            return Err(Error::Op(format!(
                "conv {cin}->{cout} {k}x{k2}: needs odd square kernels, Cin % 4 == 0, fp16"
            )));
        }
        let cout_pad = cout.div_ceil(4) * 4;
        let texture = gpu.report.kernels.textures() && texture_fits(gpu, k * k * cin / 4, cout_pad);
        let weight = permute(gpu, w, cout, cout_pad, cin, k * k, texture)?;
        // The bias is a [Cout, 1] "weight" padded the same way (copies cannot move 2-byte rows).
        let Weight::Buffer(bias) = permute(gpu, b, cout, cout_pad, 1, 1, false)? else { unreachable!() };
        gpu.check()?;
        Ok(Conv2d { weight, bias: Tensor { shape: vec![cout_pad], ..bias }, cin, cout, cout_pad, ksize: k })
    }
}

/// Which channels of a layer one dispatch covers, for activations kept in channel parts (see `model::vae`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvSlice {
    /// First input channel of the layer that `x` holds.
    pub ci0: usize,
    /// First output channel of the layer that `y` receives.
    pub co0: usize,
    /// Add into `y` instead of writing it, without the bias: the partial sum over a later input part.
    pub accumulate: bool,
}

/// `y = conv(x) + bias (+ res)` over NHWC: x [N, IH, IW, Cin], y and res [N, OH, OW, Cout_pad]; with `upsample`,
/// the input is first upsampled x2 (nearest), so OH = 2 IH.
pub fn conv2d(
    gpu: &Gpu,
    x: &Tensor,
    conv: &Conv2d,
    y: &Tensor,
    upsample: bool,
    res: Option<&Tensor>,
) -> Result<Dispatch> {
    conv2d_slice(gpu, x, conv, y, upsample, res, ConvSlice::default())
}

/// [`conv2d`] over a channel slice of the layer: x holds input channels `ci0..ci0 + Cx` and y receives output
/// channels `co0..co0 + Cy` (both multiples of 4); with `accumulate`, `y += conv_slice(x) (+ res)` without the bias.
pub fn conv2d_slice(
    gpu: &Gpu,
    x: &Tensor,
    conv: &Conv2d,
    y: &Tensor,
    upsample: bool,
    res: Option<&Tensor>,
    slice: ConvSlice,
) -> Result<Dispatch> {
    let &[n, ih, iw, cin] = x.shape.as_slice() else {
        return Err(Error::Op(format!("conv input {:?} is not [N, H, W, C]", x.shape)));
    };
    let (oh, ow) = if upsample { (2 * ih, 2 * iw) } else { (ih, iw) };
    let cout = y.dim(-1);
    let whole = slice.ci0 == 0 && cin == conv.cin && slice.co0 == 0 && cout == conv.cout_pad;
    if slice.ci0 + cin > conv.cin
        || slice.co0 + cout > conv.cout_pad
        || (!whole
            && (cin % 4 != 0
                || !cout.is_multiple_of(4)
                || !slice.ci0.is_multiple_of(4)
                || !slice.co0.is_multiple_of(4)))
        || y.shape != [n, oh, ow, cout]
        || res.is_some_and(|r| r.shape != y.shape)
    {
        return Err(Error::Op(format!(
            "conv {}->{}: input {:?} from channel {}, output {:?} from channel {}, expected [{n}, {oh}, {ow}, <= {}]",
            conv.cin, conv.cout, x.shape, slice.ci0, y.shape, slice.co0, conv.cout_pad
        )));
    }
    let params = ConvParams {
        n: n as u32,
        oh: oh as u32,
        ow: ow as u32,
        cin: cin as u32,
        cout: cout as u32,
        ksize: conv.ksize as u32,
        pad: (conv.ksize / 2) as u32,
        flags: res.is_some() as u32 | (slice.accumulate as u32) << 1 | (upsample as u32) << 2,
        wcin: conv.cin as u32,
        ci0: slice.ci0 as u32,
        co0: slice.co0 as u32,
        _pad: 0,
    };
    // The weight binding and its fetch function come from weights_buf.wgsl or weights_tex.wgsl.
    let (variant, source, w_bind, w_res) = match &conv.weight {
        Weight::Buffer(t) => ("", [WEIGHTS_BUF, CONV, ""], Bind::Read, Res::Buf(&t.buf)),
        Weight::Texture(_, v) => {
            ("texture_weights", [gpu.texture_decl(TEX_W), WEIGHTS_TEX, CONV], Bind::TexF16, Res::Tex(v))
        }
    };
    let kern = gpu.kernel(&KernelSpec {
        name: "conv",
        variant: variant.into(),
        source: &source,
        entry: "main",
        binds: &[Bind::Read, w_bind, Bind::Read, Bind::Read, Bind::ReadWrite],
        ..Default::default()
    })?;
    // Unused residual binding: any read-only buffer that is not y.
    let res_buf = res.map_or(&conv.bias.buf, |r| &r.buf);
    let pixel_groups = ((n * oh * ow) as u32).div_ceil(512);
    let [gy, gz, _] = grid(pixel_groups);
    let groups = [(cout as u32).div_ceil(32), gy, gz];
    let real_out = cout.min(conv.cout.saturating_sub(slice.co0));
    // In f64: the product passes u32 (wasm32's usize) for the SD VAE at 256 px.
    let flops = 2.0 * [n, oh, ow, real_out, conv.ksize, conv.ksize, cin].iter().map(|&v| v as f64).product::<f64>();
    gpu.dispatch(
        &kern,
        "conv",
        &params,
        &[Res::Buf(&x.buf), w_res, Res::Buf(&conv.bias.buf), Res::Buf(res_buf), Res::Buf(&y.buf)],
        groups,
        flops,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_structs() {
        assert_eq!(std::mem::size_of::<super::ConvParams>(), 48);
        assert_eq!(std::mem::size_of::<crate::ops::PermuteParams>(), 16);
    }
}
