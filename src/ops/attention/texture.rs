//! The texture attention kernel of CPU adapters (`shaders/attention/texture.wgsl` with `texture_plain.wgsl`, or with
//! subgroups `texture_subgroup.wgsl`, and `texture_head.wgsl` written out for the head dim): qkv staged into an
//! `rgba32float` texture by a copy before the dispatch.

use super::head::per_head_dim;
use super::{Problem, BQ};
use crate::error::Result;
use crate::gpu::{Bind, Dispatch, Gpu, KernelSpec, Res, Stage, Staging};
use crate::ops::weight::stageable;

const TEXTURE: &str = crate::shader!("attention/texture");
const PLAIN: &str = crate::shader!("attention/texture_plain");
const SUBGROUP: &str = crate::shader!("attention/texture_subgroup");
const HEAD: &str = crate::shader!("attention/texture_head");
const TEX_QKV: [&str; 2] = crate::texture_decl!(1, "qkvt", "rgba32float");

/// Whether attention of width `d` over `rows` rows takes the texture kernel on this device: the texture path, with
/// qkv's rows (3D f32 values) stageable.
pub(super) fn fits(gpu: &Gpu, d: usize, rows: usize) -> bool {
    gpu.report.kernels.textures() && stageable(gpu, 12 * d, 3 * d / 4, rows)
}

pub(super) fn dispatch(gpu: &Gpu, p: &Problem<'_>) -> Result<Dispatch> {
    let subgroups = gpu.report.subgroups;
    let head = per_head_dim(HEAD, p.head_dim as u32 / 4);
    let body = if subgroups { [crate::ops::BCAST8, SUBGROUP] } else { ["", PLAIN] };
    let variant = if subgroups { "subgroup" } else { "plain" };
    let kern = gpu.kernel(&KernelSpec {
        name: "attention_tex",
        variant: format!("{variant}_hd{}", p.head_dim).into(),
        source: &[gpu.texture_decl(TEX_QKV), TEXTURE, body[0], body[1], &head],
        entry: "main",
        binds: &[Bind::TexF32, Bind::ReadWrite],
        ..Default::default()
    })?;
    let (width, rows) = (3 * p.params.d / 4, p.rows as u32);
    let (staging, view) = gpu.staging_texture(width, rows, Staging::Input);
    // Two queries per invocation (see the shader).
    let groups = [p.params.tokens.div_ceil(2 * BQ), p.params.heads, p.batch as u32];
    let mut disp =
        gpu.dispatch(&kern, "attention", &p.params, &[Res::Tex(&view), Res::Buf(&p.out.buf)], groups, p.flops)?;
    disp.stage.push(Stage { src: p.qkv.buf.clone(), src_offset: 0, width, rows, dst: staging });
    Ok(disp)
}
