//! Weights in the layout the kernels read, and the one rule for what fits a texture. Linear layers and convolutions
//! both keep their fp16 weights here: in a storage buffer, or (on the texture path of CPU adapters) in an
//! `rgba16float` texture written once at load by `shaders/weight/permute*.wgsl`.

use crate::error::Result;
use crate::gpu::{grid, Bind, DType, Gpu, KernelSpec, Res, Tensor};

const PERMUTE: &str = crate::shader!("weight/permute");
const PERMUTE_BUF: &str = crate::shader!("weight/permute_buf");
const PERMUTE_TEX: &str = crate::shader!("weight/permute_tex");

/// Bytes a row copied from a buffer into a texture must be a whole multiple of (WebGPU's `bytesPerRow` alignment).
pub const COPY_ROW_ALIGNMENT: usize = 256;

/// Whether a 2D texture of `width` texels by `height` rows fits this device's size limit.
pub fn texture_fits(gpu: &Gpu, width: usize, height: usize) -> bool {
    let max = gpu.report.max_texture_dimension_2d as usize;
    width <= max && height <= max
}

/// Whether rows of `row_bytes` each can be staged (copied from a buffer) into a texture of `width` x `height` texels:
/// the rows are whole multiples of the copy alignment and the texture fits.
pub fn stageable(gpu: &Gpu, row_bytes: usize, width: usize, height: usize) -> bool {
    row_bytes.is_multiple_of(COPY_ROW_ALIGNMENT) && texture_fits(gpu, width, height)
}

/// Where a linear layer's fp16 weight [out, in] lives.
#[derive(Clone, Debug)]
pub enum Weight {
    /// A storage buffer, read through the `W4` prelude (packed u32 or shader-f16).
    Buffer(Tensor),
    /// An `rgba16float` texture of `in / 4` x `out` texels (the same values, read with `textureLoad`).
    Texture(crate::gpu::Texture, wgpu::TextureView),
}

/// Uniform parameters of `permute.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PermuteParams {
    pub cout: u32,
    pub cout_pad: u32,
    pub cin: u32,
    pub taps: u32,
}

/// Reorders `src` ([rows, cin, taps] fp16) into [rows_pad, taps * cin], as a buffer or a texture (with one tap this
/// is a plain copy: how linear weights reach their texture).
pub(crate) fn permute(
    gpu: &Gpu,
    src: &Tensor,
    rows: usize,
    rows_pad: usize,
    cin: usize,
    taps: usize,
    texture: bool,
) -> Result<Weight> {
    let params = PermuteParams { cout: rows as u32, cout_pad: rows_pad as u32, cin: cin as u32, taps: taps as u32 };
    let total = rows_pad * taps * cin;
    let invocations = if texture { total / 4 } else { total / 2 };
    let binds: &'static [Bind] =
        if texture { &[Bind::Read, Bind::StorageTextureF16] } else { &[Bind::Read, Bind::ReadWrite] };
    let kern = gpu.kernel(&KernelSpec {
        name: "permute",
        variant: if texture { "texture" } else { "buffer" }.into(),
        source: if texture { &[super::INDEX, PERMUTE, PERMUTE_TEX] } else { &[super::INDEX, PERMUTE, PERMUTE_BUF] },
        entry: "main",
        binds,
        ..Default::default()
    })?;
    let groups = grid((invocations as u32).div_ceil(64));
    let weight = if texture {
        let (tex, view) = gpu.weight_texture("weight", (taps * cin / 4) as u32, rows_pad as u32);
        gpu.run([&gpu.dispatch(&kern, "permute", &params, &[Res::Buf(&src.buf), Res::Tex(&view)], groups, 0.0)?]);
        Weight::Texture(tex, view)
    } else {
        let dst = Tensor {
            buf: gpu.storage("weight", (total * 2) as u64)?,
            shape: vec![rows_pad, taps * cin],
            dtype: DType::F16,
        };
        gpu.run([&gpu.dispatch(&kern, "permute", &params, &[Res::Buf(&src.buf), Res::Buf(&dst.buf)], groups, 0.0)?]);
        Weight::Buffer(dst)
    };
    Ok(weight)
}
