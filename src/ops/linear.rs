//! Linear layers on fp16 weights with fused epilogues (`shaders/linear.wgsl`).

use super::weight::{permute, stageable, Weight};
use crate::error::{Error, Result};
use crate::gpu::{
    grid, AdapterReport, Bind, DType, Dispatch, Gpu, KernelSpec, Prelude, Res, Stage, Staging, Tensor, TuneKey,
};

const EPILOGUE: &str = include_str!("../../shaders/common/epilogue.wgsl");
const SOURCE: &str = include_str!("../../shaders/linear.wgsl");
const SOURCE_F16: &str = include_str!("../../shaders/linear_f16.wgsl");
const SOURCE_TEX: &str = include_str!("../../shaders/linear_tex.wgsl");
const TEX_X: [&str; 2] = crate::texture_decl!(1, "xt", "rgba32float");
const TEX_W_F16: [&str; 2] = crate::texture_decl!(2, "wt", "rgba16float");
const TEX_W_F32: [&str; 2] = crate::texture_decl!(2, "wt", "rgba32float");
const TEX_PLAIN: &str = include_str!("../../shaders/linear_tex_plain.wgsl");
const TEX_SUBGROUP: &str = include_str!("../../shaders/linear_tex_sg.wgsl");
pub use super::linear_wg::{WgTile, WG_TILES};

/// Uniform parameters of `linear.wgsl` (mirrors its `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LinearParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub tokens: u32,
    pub aux_stride: u32,
    pub aux_off: u32,
    pub row0: u32,
    pub _pad: u32,
}

/// A linear layer: weight [out, in] and bias [out], fp16, as `nn.Linear` stores them.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Weight,
    pub b: Tensor,
    n: usize,
    k: usize,
}

impl Linear {
    /// A layer from fp16 buffers `w` [out, in] and `b` [out].
    pub fn new(w: Tensor, b: Tensor) -> Result<Linear> {
        let [n, k] = w.shape[..] else {
            return Err(Error::Op(format!("linear weight has shape {:?}, expected [out, in]", w.shape)));
        };
        if w.dtype != DType::F16 || b.dtype != DType::F16 || b.shape != [n] {
            return Err(Error::Op(format!("linear {k}->{n}: weights must be fp16 [out, in] with bias [out]")));
        }
        Ok(Linear { weight: Weight::Buffer(w), b, n, k })
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    pub fn in_features(&self) -> usize {
        self.k
    }

    /// Whether a layer of this shape can use the texture path on this device: rows of the staged input (4K bytes)
    /// must be whole multiples of the 256-byte copy row alignment, and both textures fit the size limit.
    pub fn texture_fits(gpu: &Gpu, n: usize, k: usize) -> bool {
        n.is_multiple_of(4) && stageable(gpu, 4 * k, k / 4, n)
    }

    /// Moves the weight into the layout this device's linear kernels read best (see `gpu::LinearPath`): on the texture
    /// path a compute pass writes it into an `rgba16float` texture (no copy-alignment constraint on K).
    pub fn for_device(self, gpu: &Gpu) -> Result<Linear> {
        if gpu.report.texture_linears && Self::texture_fits(gpu, self.n, self.k) {
            self.to_texture(gpu)
        } else {
            Ok(self)
        }
    }

    /// [`Linear::for_device`] for a layer that runs once per sample (adaLN modulation, timestep embedding: as many
    /// rows as the batch). Without subgroups the texture kernel computes 8 rows per invocation and its cost follows
    /// its texel fetches, not the rows used: on SwiftShader at 2-8 rows it took 1.4-2.3x the register-tiled buffer
    /// kernel's time, so there such a layer keeps its storage buffer.
    pub fn for_device_per_sample(self, gpu: &Gpu) -> Result<Linear> {
        if gpu.report.subgroups {
            self.for_device(gpu)
        } else {
            Ok(self)
        }
    }

    /// The layer with its weight in an `rgba16float` texture, read by the texture kernel (the shape must pass
    /// [`Linear::texture_fits`]; benchmarks compare the paths on one device).
    pub fn to_texture(self, gpu: &Gpu) -> Result<Linear> {
        match self.weight {
            Weight::Buffer(ref w) => {
                if !Self::texture_fits(gpu, self.n, self.k) {
                    return Err(Error::Op(format!("linear {}->{} does not fit the texture path", self.k, self.n)));
                }
                let weight = permute(gpu, w, self.n, self.n, self.k, 1, true)?;
                Ok(Linear { weight, ..self })
            }
            Weight::Texture(..) => Ok(self),
        }
    }

    /// Bytes of GPU memory the weight and bias take.
    pub fn bytes(&self) -> u64 {
        (self.n * self.k * 2 + self.n * 2) as u64
    }
}

/// What happens to `x W^T + b` before it is stored.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// y = x W^T + b
    Bias,
    /// y = gelu_tanh(x W^T + b)
    Gelu,
    /// y = silu(x W^T + b)
    Silu,
    /// y += gate[m / tokens, offset..offset+N] * (x W^T + b): adaLN-Zero's gated residual, in place on y.
    /// `gate` is [batch, stride] f32.
    GatedResidual { gate: &'a Tensor, tokens: usize, offset: usize },
    /// y = x W^T + b + table[m % tokens]: `table` is [tokens, N] f32 (the position embedding).
    AddTable { table: &'a Tensor, tokens: usize },
    /// y += x W^T + b: a residual add, in place on y.
    Residual,
}

impl Epilogue<'_> {
    fn code(&self) -> f64 {
        match self {
            Epilogue::Bias => 0.0,
            Epilogue::Gelu => 1.0,
            Epilogue::Silu => 2.0,
            Epilogue::GatedResidual { .. } => 3.0,
            Epilogue::AddTable { .. } => 4.0,
            Epilogue::Residual => 5.0,
        }
    }
}

/// Which kernel computes a layer's product: the production choice, the simpler one kept beside it as its reference
/// and benchmark baseline, or (buffer weights; tests and benchmarks) one named kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinearKernel {
    /// Buffer weights: on GPUs, the workgroup-memory kernel for inputs of at least 32 rows (the tile
    /// `tune::tune_linear` recorded for the shape, else the first), else the register-tiled kernel. Texture weights: the subgroup kernel where the device
    /// has subgroups, else the plain texture kernel.
    #[default]
    Tiled,
    /// Buffer weights: 1x4 outputs per thread. Texture weights: the plain texture kernel (no subgroups).
    Simple,
    /// Buffer weights: the register-tiled kernel (4x4 outputs per thread, no workgroup memory; CPU adapters).
    /// Texture weights: as `Tiled`.
    Register,
    /// Buffer weights on a device with `shader-f16`: the register-tiled kernel multiplying in f16 (f32 sums;
    /// `shaders/linear_f16.wgsl`), for tests and benchmarks. Texture weights: as `Tiled`.
    RegisterF16,
    /// Buffer weights: the workgroup-memory kernel (`ops::linear_wg`) with tile config `WG_TILES[i]`. Texture
    /// weights: as `Tiled`.
    Workgroup(usize),
}

/// `y = epilogue(x W^T + b)` for x [M, K] (any leading dims), W [N, K], y [M, N]. One dispatch, or, for a texture
/// weight, one per chunk of rows, each staging its rows of x into a texture first.
pub fn linear(
    gpu: &Gpu,
    x: &Tensor,
    layer: &Linear,
    y: &Tensor,
    epi: Epilogue<'_>,
    kernel: LinearKernel,
) -> Result<Vec<Dispatch>> {
    let (n, k) = (layer.out_features(), layer.in_features());
    let m = x.numel() / k.max(1);
    let shape_err = |what: &str| Error::Op(format!("linear {k}->{n}: {what}"));
    if x.dim(-1) != k || x.dtype != DType::F32 {
        return Err(shape_err(&format!("input has shape {:?}", x.shape)));
    }
    if y.numel() != m * n || y.dtype != DType::F32 {
        return Err(shape_err(&format!("output has shape {:?}, expected [{m}, {n}]", y.shape)));
    }
    if k % 4 != 0 || n % 4 != 0 {
        return Err(shape_err("in and out features must be multiples of 4"));
    }
    let mut params = LinearParams { m: m as u32, n: n as u32, k: k as u32, tokens: 1, ..Default::default() };
    // Unused aux bindings get the (read-only) bias buffer: a binding must hold something.
    let aux = match epi {
        Epilogue::GatedResidual { gate, tokens, offset } => {
            let stride = gate.dim(-1);
            if tokens == 0
                || !m.is_multiple_of(tokens)
                || gate.numel() != (m / tokens) * stride
                || offset + n > stride
                || stride % 4 != 0
                || offset % 4 != 0
            {
                return Err(shape_err(&format!(
                    "gate {:?} does not fit {m} rows of {tokens} tokens at offset {offset}",
                    gate.shape
                )));
            }
            params.tokens = tokens as u32;
            params.aux_stride = stride as u32;
            params.aux_off = offset as u32;
            &gate.buf
        }
        Epilogue::AddTable { table, tokens } => {
            if tokens == 0 || table.numel() != tokens * n {
                return Err(shape_err(&format!("table {:?} is not [{tokens}, {n}]", table.shape)));
            }
            params.tokens = tokens as u32;
            &table.buf
        }
        _ => &layer.b.buf,
    };
    match &layer.weight {
        Weight::Buffer(w) => buffer_product(gpu, x, &w.buf, Prelude::Fp16, &layer.b, aux, y, params, epi, kernel),
        Weight::Texture(_, view) => {
            texture_product(gpu, x, (view, true), vec![], &layer.b, aux, y, params, epi, kernel)
        }
    }
}

/// `y = epilogue(a b^T)` for two f32 activations a [M, K] and b [N, K] (the VAE attention's products). On the
/// texture path both operands are staged into textures; otherwise the buffer kernel reads b as f32.
pub fn matmul(gpu: &Gpu, a: &Tensor, b: &Tensor, y: &Tensor, epi: Epilogue<'_>) -> Result<Vec<Dispatch>> {
    let (n, k) = (b.dim(0), b.dim(-1));
    let m = a.numel() / k.max(1);
    let err = |what: String| Error::Op(format!("matmul [{m}, {k}] x [{n}, {k}]^T: {what}"));
    if a.dim(-1) != k || a.dtype != DType::F32 || b.dtype != DType::F32 || b.numel() != n * k {
        return Err(err(format!("operands {:?} and {:?}", a.shape, b.shape)));
    }
    if y.numel() != m * n || k % 4 != 0 || n % 4 != 0 {
        return Err(err(format!("output {:?}; K and N must be multiples of 4", y.shape)));
    }
    if !matches!(epi, Epilogue::Bias | Epilogue::Residual) {
        return Err(err("only the plain and residual epilogues are supported".into()));
    }
    // A zero bias: the kernels always add one.
    let zero_bias = Tensor { buf: gpu.storage("zero bias", (n * 2) as u64)?, shape: vec![n], dtype: DType::F16 };
    let params = LinearParams { m: m as u32, n: n as u32, k: k as u32, tokens: 1, ..Default::default() };
    if gpu.report.texture_linears && stageable(gpu, 4 * k, k / 4, n) {
        let (tex, view) = gpu.staging_texture(k as u32 / 4, n as u32, Staging::SecondInput);
        let stage_b = Stage { src: b.buf.clone(), src_offset: 0, width: k as u32 / 4, rows: n as u32, dst: tex };
        let b_tex = (&view, false);
        texture_product(gpu, a, b_tex, vec![stage_b], &zero_bias, &zero_bias.buf, y, params, epi, LinearKernel::Tiled)
    } else {
        buffer_product(gpu, a, &b.buf, Prelude::F32, &zero_bias, &zero_bias.buf, y, params, epi, LinearKernel::Tiled)
    }
}

/// The storage-buffer kernels: one dispatch.
#[allow(clippy::too_many_arguments)]
fn buffer_product(
    gpu: &Gpu,
    x: &Tensor,
    w: &wgpu::Buffer,
    prelude: Prelude,
    bias: &Tensor,
    aux: &wgpu::Buffer,
    y: &Tensor,
    params: LinearParams,
    epi: Epilogue<'_>,
    kernel: LinearKernel,
) -> Result<Vec<Dispatch>> {
    let (m, n) = (params.m, params.n);
    let kernel = match kernel {
        LinearKernel::Tiled if !gpu.report.is_cpu() && m >= 32 => {
            let tuned = gpu.choice(&TuneKey::Linear { m: m as usize, k: params.k as usize, n: n as usize });
            // A tile tuned on fp16 weights may multiply in f16, which f32 operands (`matmul`) never do.
            let usable = |&i: &usize| {
                linear_wg_fits(gpu, i, m as usize, n as usize)
                    && (prelude == Prelude::Fp16 || WG_TILES[i].f16_sums == 0)
            };
            // Untuned, the first config that fits; the register-tiled kernel (64 invocations, no workgroup memory)
            // where none does.
            match tuned.filter(usable).or_else(|| (0..WG_TILES.len()).find(usable)) {
                Some(i) => LinearKernel::Workgroup(i),
                None => LinearKernel::Register,
            }
        }
        LinearKernel::Tiled => LinearKernel::Register,
        k => k,
    };
    let flops = 2.0 * m as f64 * n as f64 * params.k as f64;
    let res = [Res::Buf(&x.buf), Res::Buf(w), Res::Buf(&bias.buf), Res::Buf(aux), Res::Buf(&y.buf)];
    let (entry, groups, tile) = match kernel {
        LinearKernel::Workgroup(i) => {
            let t = *WG_TILES
                .get(i)
                .ok_or_else(|| Error::Op(format!("linear tile config {i} does not exist ({})", WG_TILES.len())))?;
            if t.f16_sums > 0 && !(gpu.uses_f16() && prelude == Prelude::Fp16) {
                return Err(Error::Op(format!("linear tile {t} needs shader-f16 and fp16 weights")));
            }
            let source = super::linear_wg::source(t);
            if t.splits > 1 {
                return split_k_product(gpu, t, source, &res, params, epi, prelude, flops);
            }
            ("wg", [n.div_ceil(t.bn), m.div_ceil(t.bm), 1], source)
        }
        LinearKernel::Simple => ("simple", grid((m * n / 4).div_ceil(64)), ""),
        LinearKernel::RegisterF16 if gpu.uses_f16() && prelude == Prelude::Fp16 => {
            ("main_f16", [(n / 4).div_ceil(8), m.div_ceil(4).div_ceil(8), 1], SOURCE_F16)
        }
        LinearKernel::RegisterF16 => {
            return Err(Error::Op("the f16 register-tiled linear kernel needs shader-f16 and fp16 weights".into()))
        }
        _ => ("main", [(n / 4).div_ceil(8), m.div_ceil(4).div_ceil(8), 1], ""),
    };
    let kern = gpu.kernel(&KernelSpec {
        name: "linear",
        source: &[super::INDEX, EPILOGUE, SOURCE, tile],
        entry,
        binds: &[Bind::Read, Bind::Read, Bind::Read, Bind::Read, Bind::ReadWrite],
        constants: vec![("EPI", epi.code())],
        prelude,
    })?;
    Ok(vec![gpu.dispatch(&kern, "linear", &params, &res, groups, flops)?])
}

/// Whether tile config `WG_TILES[i]` can run y [M, N] on this device: its invocations and workgroup memory within
/// the device's limits, split-K configs with a scratch buffer of splits x M x N floats within the storage binding
/// limit, and the f16 tiles on a device with `shader-f16`.
pub fn linear_wg_fits(gpu: &Gpu, i: usize, m: usize, n: usize) -> bool {
    WG_TILES.get(i).is_some_and(|t| wg_tile_fits(&gpu.report, gpu.uses_f16(), t, m, n))
}

/// [`linear_wg_fits`] for a tile on a device with this report (`f16`: whether it reads weights as f16).
pub fn wg_tile_fits(report: &AdapterReport, f16: bool, t: &WgTile, m: usize, n: usize) -> bool {
    (t.f16_sums == 0 || f16)
        && t.threads() <= report.max_compute_invocations_per_workgroup
        && t.shared_bytes() <= report.max_compute_workgroup_storage_size
        && (t.splits == 1 || t.splits as u64 * m as u64 * n as u64 * 4 <= report.max_storage_buffer_binding_size)
}

/// The split-K workgroup kernel: one dispatch computes the slices of K into the device's scratch buffer, a second
/// sums them with the bias and the epilogue (see `ops::linear_wg`).
#[allow(clippy::too_many_arguments)]
fn split_k_product(
    gpu: &Gpu,
    t: WgTile,
    source: &'static str,
    res: &[Res<'_>; 5],
    params: LinearParams,
    epi: Epilogue<'_>,
    prelude: Prelude,
    flops: f64,
) -> Result<Vec<Dispatch>> {
    let (m, n) = (params.m, params.n);
    let part = gpu.scratch(t.splits as u64 * m as u64 * n as u64 * 4)?;
    let binds = [Bind::Read, Bind::Read, Bind::Read, Bind::Read, Bind::ReadWrite, Bind::ReadWrite];
    let [a, b, c, d, e] = res;
    let res = [*a, *b, *c, *d, *e, Res::Buf(&part)];
    let mut out = vec![];
    for (entry, groups, flops) in [
        ("wg", [n.div_ceil(t.bn), m.div_ceil(t.bm), t.splits], flops),
        ("wg_reduce", grid((m * n / 4).div_ceil(64)), 0.0),
    ] {
        let kern = gpu.kernel(&KernelSpec {
            name: "linear",
            source: &[super::INDEX, EPILOGUE, SOURCE, source],
            entry,
            binds: &binds,
            constants: vec![("EPI", epi.code())],
            prelude,
        })?;
        out.push(gpu.dispatch(&kern, "linear", &params, &res, groups, flops)?);
    }
    Ok(out)
}

/// Invocations per workgroup of the plain texture kernel for `rows` rows (8 rows each): 64, or for shorter inputs
/// just enough in steps of 4 (SwiftShader's SIMD width), so that a workgroup does not run mostly idle invocations.
fn plain_workgroup(rows: usize) -> usize {
    rows.div_ceil(8).next_multiple_of(4).min(64)
}

/// The texture kernel: one dispatch per chunk of rows that fits the texture height, each staging its rows of x
/// (the first chunk also records `extra` stages, e.g. the second operand of a matmul). `w` is the second operand's
/// texture and whether it holds fp16 weights (rgba16float) or an f32 operand (rgba32float). `LinearKernel::Tiled`
/// takes the subgroup kernel where the device has subgroups, `Simple` always the plain one.
#[allow(clippy::too_many_arguments)]
fn texture_product(
    gpu: &Gpu,
    x: &Tensor,
    w: (&wgpu::TextureView, bool),
    mut extra: Vec<Stage>,
    bias: &Tensor,
    aux: &wgpu::Buffer,
    y: &Tensor,
    params: LinearParams,
    epi: Epilogue<'_>,
    kernel: LinearKernel,
) -> Result<Vec<Dispatch>> {
    let (m, n, k) = (params.m as usize, params.n, params.k);
    let subgroups = gpu.report.subgroups && kernel != LinearKernel::Simple;
    let chunk = m.min(gpu.report.max_texture_dimension_2d as usize);
    // Rows x columns one workgroup covers: 64 invocations x 4 rows, 64 columns (subgroups); WG_ROWS invocations x 8
    // rows, 32 columns (plain).
    let mut constants = vec![("EPI", epi.code())];
    let (tile_rows, tile_cols) = if subgroups {
        (256, 64)
    } else {
        let wg = plain_workgroup(chunk);
        constants.push(("WG_ROWS", wg as f64));
        (wg as u32 * 8, 32)
    };
    let (w, w_f16) = w;
    let w_decl = gpu.texture_decl(if w_f16 { TEX_W_F16 } else { TEX_W_F32 });
    let body = if subgroups { [super::BCAST8, TEX_SUBGROUP] } else { [TEX_PLAIN, ""] };
    let source = [EPILOGUE, gpu.texture_decl(TEX_X), w_decl, SOURCE_TEX, body[0], body[1]];
    let binds =
        [Bind::TexF32, if w_f16 { Bind::TexF16 } else { Bind::TexF32 }, Bind::Read, Bind::Read, Bind::ReadWrite];
    let kern = gpu.kernel(&KernelSpec {
        name: "linear_tex",
        source: &source,
        entry: "main",
        binds: &binds,
        constants,
        prelude: Prelude::Fp16,
    })?;
    let (staging, staging_view) = gpu.staging_texture(k / 4, chunk as u32, Staging::Input);
    let mut out = vec![];
    for row0 in (0..m).step_by(chunk) {
        let rows = chunk.min(m - row0);
        let p = LinearParams { m: rows as u32, row0: row0 as u32, ..params };
        let res = [Res::Tex(&staging_view), Res::Tex(w), Res::Buf(&bias.buf), Res::Buf(aux), Res::Buf(&y.buf)];
        let groups = [n.div_ceil(tile_cols), (rows as u32).div_ceil(tile_rows), 1];
        let flops = 2.0 * rows as f64 * n as f64 * k as f64;
        let mut d = gpu.dispatch(&kern, "linear", &p, &res, groups, flops)?;
        d.stage = std::mem::take(&mut extra);
        d.stage.push(Stage {
            src: x.buf.clone(),
            src_offset: (row0 * k as usize * 4) as u64,
            width: k / 4,
            rows: rows as u32,
            dst: staging.clone(),
        });
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::LinearParams;

    #[test]
    fn params_match_the_wgsl_struct() {
        // 8 x u32 in WGSL: size 32, align 4 (uniform buffers need a multiple of 16).
        assert_eq!(std::mem::size_of::<LinearParams>(), 32);
        assert_eq!(std::mem::align_of::<LinearParams>(), 4);
    }
}
