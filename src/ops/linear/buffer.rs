//! The storage-buffer linear kernels: `shaders/linear/buffer.wgsl` (register-tiled and simple),
//! `buffer_f16.wgsl` (register-tiled with f16 products) and, on GPUs, `workgroup.wgsl` in the tile config the
//! tuner chose (split-K configs as two dispatches).

use super::workgroup::WgTile;
use super::{linear_wg_fits, LinearKernel, Product, EPILOGUE, WG_TILES};
use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, Dispatch, Gpu, KernelSpec, Prelude, Res, TuneKey};

const BUFFER: &str = crate::shader!("linear/buffer");
const BUFFER_F16: &str = crate::shader!("linear/buffer_f16");
const WORKGROUP: &str = crate::shader!("linear/workgroup");
const WORKGROUP_F32: &str = crate::shader!("linear/workgroup_f32");
const WORKGROUP_F16: &str = crate::shader!("linear/workgroup_f16");

/// x, w, bias, aux, y; the workgroup kernel adds the split-K scratch.
const BINDS: [Bind; 6] = [Bind::Read, Bind::Read, Bind::Read, Bind::Read, Bind::ReadWrite, Bind::ReadWrite];

/// `y = epilogue(x w^T + b)` with `w` in a storage buffer (fp16 weights, or with `Prelude::F32` an f32 operand).
pub(super) fn product(
    gpu: &Gpu,
    p: &Product<'_>,
    w: &wgpu::Buffer,
    prelude: Prelude,
    kernel: LinearKernel,
) -> Result<Vec<Dispatch>> {
    let (m, n) = (p.params.m, p.params.n);
    let flops = 2.0 * m as f64 * n as f64 * p.params.k as f64;
    let res = [Res::Buf(&p.x.buf), Res::Buf(w), Res::Buf(&p.bias.buf), Res::Buf(p.aux), Res::Buf(&p.y.buf)];
    let f16 = gpu.uses_f16() && prelude == Prelude::Fp16;
    let (variant, source, entry, groups) = match choose(gpu, p, prelude, kernel) {
        LinearKernel::Workgroup(i) => {
            let t = *WG_TILES
                .get(i)
                .ok_or_else(|| Error::Op(format!("linear tile config {i} does not exist ({})", WG_TILES.len())))?;
            if t.f16_sums > 0 && !f16 {
                return Err(Error::Op(format!("linear tile {t} needs shader-f16 and fp16 weights")));
            }
            return workgroup(gpu, p, t, &res, prelude, flops);
        }
        LinearKernel::Simple => ("buffer", [BUFFER, ""], "simple", grid((m * n / 4).div_ceil(64))),
        LinearKernel::RegisterF16 if f16 => ("buffer_f16", [BUFFER, BUFFER_F16], "main_f16", register_grid(m, n)),
        LinearKernel::RegisterF16 => {
            return Err(Error::Op("the f16 register-tiled linear kernel needs shader-f16 and fp16 weights".into()))
        }
        _ => ("buffer", [BUFFER, ""], "main", register_grid(m, n)),
    };
    let kern = gpu.kernel(&KernelSpec {
        name: "linear",
        variant: variant.into(),
        source: &[crate::ops::INDEX, EPILOGUE, source[0], source[1]],
        entry,
        binds: &BINDS[..5],
        constants: vec![("EPI", p.epi.code())],
        prelude,
    })?;
    Ok(vec![gpu.dispatch(&kern, "linear", &p.params, &res, groups, flops)?])
}

/// The register-tiled kernels' grid: 8 x 8 invocations of 4 x 4 outputs.
fn register_grid(m: u32, n: u32) -> [u32; 3] {
    [(n / 4).div_ceil(8), m.div_ceil(4).div_ceil(8), 1]
}

/// The kernel `LinearKernel::Tiled` means on this device: on GPUs, for inputs of at least 32 rows, the workgroup
/// tile tuned for the shape (else the first that fits; a tile tuned on fp16 weights may multiply in f16, which f32
/// operands never do); otherwise, and where no tile fits, the register-tiled kernel.
fn choose(gpu: &Gpu, p: &Product<'_>, prelude: Prelude, kernel: LinearKernel) -> LinearKernel {
    let (m, n, k) = (p.params.m as usize, p.params.n as usize, p.params.k as usize);
    match kernel {
        LinearKernel::Tiled if gpu.report.kernels.gpu() && m >= 32 => {
            let usable =
                |&i: &usize| linear_wg_fits(gpu, i, m, n) && (prelude == Prelude::Fp16 || WG_TILES[i].f16_sums == 0);
            let tuned = gpu.choice(&TuneKey::Linear { m, k, n });
            match tuned.filter(usable).or_else(|| (0..WG_TILES.len()).find(usable)) {
                Some(i) => LinearKernel::Workgroup(i),
                None => LinearKernel::Register,
            }
        }
        LinearKernel::Tiled => LinearKernel::Register,
        k => k,
    }
}

/// The workgroup-memory kernel in tile config `t`: one dispatch, or with split-K one that computes the slices of K
/// into the device's scratch buffer and a second that sums them with the bias and the epilogue.
fn workgroup(
    gpu: &Gpu,
    p: &Product<'_>,
    t: WgTile,
    res: &[Res<'_>; 5],
    prelude: Prelude,
    flops: f64,
) -> Result<Vec<Dispatch>> {
    let (m, n) = (p.params.m, p.params.n);
    // Without split-K the scratch binding is not written; any buffer serves.
    let part = gpu.scratch(if t.splits > 1 { t.splits as u64 * m as u64 * n as u64 * 4 } else { 16 })?;
    let [a, b, c, d, e] = res;
    let res = [*a, *b, *c, *d, *e, Res::Buf(&part)];
    let (variant, tiles) = if t.f16_sums > 0 { ("workgroup_f16", WORKGROUP_F16) } else { ("workgroup", WORKGROUP_F32) };
    let mut constants = t.constants();
    constants.push(("EPI", p.epi.code()));
    let mut steps = vec![("wg", [n.div_ceil(t.bn), m.div_ceil(t.bm), t.splits], flops)];
    if t.splits > 1 {
        steps.push(("wg_reduce", grid((m * n / 4).div_ceil(64)), 0.0));
    }
    let mut out = vec![];
    for (entry, groups, flops) in steps {
        let kern = gpu.kernel(&KernelSpec {
            name: "linear",
            variant: variant.into(),
            source: &[crate::ops::INDEX, EPILOGUE, BUFFER, tiles, WORKGROUP],
            entry,
            binds: &BINDS,
            constants: constants.clone(),
            prelude,
        })?;
        out.push(gpu.dispatch(&kern, "linear", &p.params, &res, groups, flops)?);
    }
    Ok(out)
}
