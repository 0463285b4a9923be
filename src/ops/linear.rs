//! Linear layers on fp16 weights with fused epilogues (`shaders/linear.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{grid, Bind, DType, Dispatch, Gpu, KernelSpec, Tensor};

const SOURCE: &str = include_str!("../../shaders/linear.wgsl");

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
    pub _pad: [u32; 2],
}

/// A linear layer's weights: `w` [out, in] and `b` [out], both fp16, as `nn.Linear` stores them.
#[derive(Clone, Debug)]
pub struct Linear {
    pub w: Tensor,
    pub b: Tensor,
}

impl Linear {
    pub fn out_features(&self) -> usize {
        self.w.shape[0]
    }
    pub fn in_features(&self) -> usize {
        self.w.shape[1]
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
    GatedResidual {
        gate: &'a Tensor,
        tokens: usize,
        offset: usize,
    },
    /// y = x W^T + b + table[m % tokens]: `table` is [tokens, N] f32 (the position embedding).
    AddTable { table: &'a Tensor, tokens: usize },
}

impl Epilogue<'_> {
    fn code(&self) -> f64 {
        match self {
            Epilogue::Bias => 0.0,
            Epilogue::Gelu => 1.0,
            Epilogue::Silu => 2.0,
            Epilogue::GatedResidual { .. } => 3.0,
            Epilogue::AddTable { .. } => 4.0,
        }
    }
}

/// Which kernel computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinearKernel {
    /// 4x4 outputs per thread, vec4 loads: the production kernel.
    #[default]
    Tiled,
    /// 1x4 outputs per thread: the reference and benchmark baseline.
    Simple,
}

/// `y = epilogue(x W^T + b)` for x [M, K] (any leading dims), W [N, K], y [M, N].
pub fn linear(
    gpu: &Gpu,
    x: &Tensor,
    layer: &Linear,
    y: &Tensor,
    epi: Epilogue<'_>,
    kernel: LinearKernel,
) -> Result<Dispatch> {
    let (n, k) = (layer.out_features(), layer.in_features());
    let m = x.numel() / k.max(1);
    let shape_err = |what: &str| Error::Config(format!("linear {k}->{n}: {what}"));
    if x.dim(-1) != k || x.dtype != DType::F32 {
        return Err(shape_err(&format!("input has shape {:?}", x.shape)));
    }
    if y.numel() != m * n || y.dtype != DType::F32 {
        return Err(shape_err(&format!(
            "output has shape {:?}, expected [{m}, {n}]",
            y.shape
        )));
    }
    if layer.w.dtype != DType::F16 || layer.b.shape != [n] {
        return Err(shape_err("weights must be fp16 [out, in] with bias [out]"));
    }
    if k % 4 != 0 || n % 4 != 0 {
        return Err(shape_err("in and out features must be multiples of 4"));
    }
    let mut params = LinearParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        tokens: 1,
        ..Default::default()
    };
    // Unused aux bindings get the (read-only) bias buffer: a binding must hold something.
    let aux = match epi {
        Epilogue::GatedResidual {
            gate,
            tokens,
            offset,
        } => {
            let stride = gate.dim(-1);
            if tokens == 0
                || m % tokens != 0
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
                return Err(shape_err(&format!(
                    "table {:?} is not [{tokens}, {n}]",
                    table.shape
                )));
            }
            params.tokens = tokens as u32;
            &table.buf
        }
        _ => &layer.b.buf,
    };
    let (entry, groups) = match kernel {
        LinearKernel::Tiled => (
            "main",
            [
                (n as u32 / 4).div_ceil(8),
                (m as u32).div_ceil(4).div_ceil(8),
                1,
            ],
        ),
        LinearKernel::Simple => ("simple", grid((m as u32 * n as u32 / 4).div_ceil(64))),
    };
    let spec = KernelSpec {
        name: "linear",
        source: SOURCE,
        entry,
        binds: &[
            Bind::Read,
            Bind::Read,
            Bind::Read,
            Bind::Read,
            Bind::ReadWrite,
        ],
        constants: vec![("EPI", epi.code())],
    };
    let kern = gpu.kernel(&spec)?;
    gpu.dispatch(
        &kern,
        "linear",
        &params,
        &[&x.buf, &layer.w.buf, &layer.b.buf, aux, &y.buf],
        groups,
        2.0 * (m * n * k) as f64,
    )
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
