//! The texture linear kernels of CPU adapters (`shaders/linear/texture.wgsl` with `texture_plain.wgsl`, or with
//! subgroups `texture_subgroup.wgsl`): x staged into an `rgba32float` texture by a copy before each dispatch, the
//! weights in an `rgba16float` texture (or a matmul's second operand staged too).

use super::{LinearKernel, LinearParams, Product, EPILOGUE};
use crate::error::Result;
use crate::gpu::{Bind, Dispatch, Gpu, KernelSpec, Prelude, Res, Stage, Staging};

const TEXTURE: &str = crate::shader!("linear/texture");
const PLAIN: &str = crate::shader!("linear/texture_plain");
const SUBGROUP: &str = crate::shader!("linear/texture_subgroup");
const TEX_X: [&str; 2] = crate::texture_decl!(1, "xt", "rgba32float");
const TEX_W_F16: [&str; 2] = crate::texture_decl!(2, "wt", "rgba16float");
const TEX_W_F32: [&str; 2] = crate::texture_decl!(2, "wt", "rgba32float");

/// Invocations per workgroup of the plain texture kernel for `rows` rows (8 rows each): 64, or for shorter inputs
/// just enough in steps of 4 (SwiftShader's SIMD width), so that a workgroup does not run mostly idle invocations.
fn plain_workgroup(rows: usize) -> usize {
    rows.div_ceil(8).next_multiple_of(4).min(64)
}

/// One dispatch per chunk of rows that fits the texture height, each staging its rows of x (the first chunk also
/// records `extra` stages, e.g. the second operand of a matmul). `w` is the second operand's texture and whether it
/// holds fp16 weights (rgba16float) or an f32 operand (rgba32float). `LinearKernel::Tiled` takes the subgroup kernel
/// where the device has subgroups, `Simple` always the plain one.
pub(super) fn product(
    gpu: &Gpu,
    p: &Product<'_>,
    w: (&wgpu::TextureView, bool),
    mut extra: Vec<Stage>,
    kernel: LinearKernel,
) -> Result<Vec<Dispatch>> {
    let (m, n, k) = (p.params.m as usize, p.params.n, p.params.k);
    let subgroups = gpu.report.subgroups && kernel != LinearKernel::Simple;
    let chunk = m.min(gpu.report.max_texture_dimension_2d as usize);
    // Rows x columns one workgroup covers: 64 invocations x 4 rows, 64 columns (subgroups); WG_ROWS invocations x 8
    // rows, 32 columns (plain).
    let mut constants = vec![("EPI", p.epi.code())];
    let (tile_rows, tile_cols) = if subgroups {
        (256, 64)
    } else {
        let wg = plain_workgroup(chunk);
        constants.push(("WG_ROWS", wg as f64));
        (wg as u32 * 8, 32)
    };
    let (w, w_f16) = w;
    let w_decl = gpu.texture_decl(if w_f16 { TEX_W_F16 } else { TEX_W_F32 });
    let body = if subgroups { [crate::ops::BCAST8, SUBGROUP] } else { [PLAIN, ""] };
    let variant = match (subgroups, w_f16) {
        (true, true) => "subgroup",
        (true, false) => "subgroup_f32_operand",
        (false, true) => "plain",
        (false, false) => "plain_f32_operand",
    };
    let kern = gpu.kernel(&KernelSpec {
        name: "linear_tex",
        variant: variant.into(),
        source: &[EPILOGUE, gpu.texture_decl(TEX_X), w_decl, TEXTURE, body[0], body[1]],
        entry: "main",
        binds: &[
            Bind::TexF32,
            if w_f16 { Bind::TexF16 } else { Bind::TexF32 },
            Bind::Read,
            Bind::Read,
            Bind::ReadWrite,
        ],
        constants,
        prelude: Prelude::Fp16,
    })?;
    let (staging, staging_view) = gpu.staging_texture(k / 4, chunk as u32, Staging::Input);
    let mut out = vec![];
    for row0 in (0..m).step_by(chunk) {
        let rows = chunk.min(m - row0);
        let params = LinearParams { m: rows as u32, row0: row0 as u32, ..p.params };
        let res = [Res::Tex(&staging_view), Res::Tex(w), Res::Buf(&p.bias.buf), Res::Buf(p.aux), Res::Buf(&p.y.buf)];
        let groups = [n.div_ceil(tile_cols), (rows as u32).div_ceil(tile_rows), 1];
        let flops = 2.0 * rows as f64 * n as f64 * k as f64;
        let mut d = gpu.dispatch(&kern, "linear", &params, &res, groups, flops)?;
        d.stage = std::mem::take(&mut extra);
        d.stage.push(Stage {
            src: p.x.buf.clone(),
            src_offset: (row0 * k as usize * 4) as u64,
            width: k / 4,
            rows: rows as u32,
            dst: staging.clone(),
        });
        out.push(d);
    }
    Ok(out)
}
