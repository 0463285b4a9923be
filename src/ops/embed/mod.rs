//! Timestep features and the class-conditioning vector (`shaders/embed/embed.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{Bind, DType, Dispatch, Gpu, KernelSpec, Res, Tensor};

const SOURCE: &str = crate::shader!("embed/embed");

pub use crate::arch::FREQ_DIM;
/// `max_period` of the timestep features.
pub const MAX_PERIOD: f32 = 10000.0;

/// Uniform parameters of `embed.wgsl` (mirrors its `Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EmbedParams {
    pub n: u32,
    pub dim: u32,
    pub rows: u32,
    pub max_period: f32,
}

/// One row's class conditioning, as `condition` reads it: the label embedding is
/// `(1 - alpha) * table[a] + alpha * table[b]`. A plain class `c` is `(c, c, 0)`, which reads `table[c]` exactly.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LabelMix {
    pub a: u32,
    pub b: u32,
    pub alpha: f32,
}

impl LabelMix {
    /// The label embedding of class `c` alone.
    pub fn class(c: u32) -> LabelMix {
        LabelMix { a: c, b: c, alpha: 0.0 }
    }

    /// `(1 - alpha) * embed(a) + alpha * embed(b)`.
    pub fn blend(a: u32, b: u32, alpha: f32) -> LabelMix {
        LabelMix { a, b, alpha }
    }

    /// A blend's alpha must be a number in [0, 1].
    pub fn check_alpha(alpha: f32) -> Result<()> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(Error::input(format!("blend alpha {alpha} must be a number from 0 to 1")));
        }
        Ok(())
    }
}

const BINDS: &[Bind] = &[Bind::Read, Bind::Read, Bind::Read, Bind::ReadWrite];

fn kernel_spec(entry: &'static str) -> KernelSpec<'static> {
    KernelSpec { name: "embed", source: &[SOURCE], entry, binds: BINDS, ..Default::default() }
}

/// `out[n] = [cos(t_n f), sin(t_n f)]` for t [N] f32 and out [N, 256].
/// `dummy` is any read-only fp16 buffer (the entry point shares its layout with [`condition`]).
pub fn timestep_freqs(gpu: &Gpu, t: &Tensor, dummy: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let n = t.numel();
    if out.shape != [n, FREQ_DIM] || t.dtype != DType::F32 {
        return Err(Error::Op(format!("timestep_freqs: t {:?} -> out {:?}", t.shape, out.shape)));
    }
    let params = EmbedParams { n: n as u32, dim: FREQ_DIM as u32, rows: 0, max_period: MAX_PERIOD };
    let kern = gpu.kernel(&kernel_spec("timestep_freqs"))?;
    let groups = [((n * FREQ_DIM / 4) as u32).div_ceil(64), 1, 1];
    // The unused `temb` slot gets `t` again: read-only aliases are allowed, a read-write alias is not.
    gpu.dispatch(
        &kern,
        "embed",
        &params,
        &[Res::Buf(&t.buf), Res::Buf(&dummy.buf), Res::Buf(&t.buf), Res::Buf(&out.buf)],
        groups,
        0.0,
    )
}

/// `out = silu(temb + mix(table, labels))` for labels [N, 3] u32 (rows of [`LabelMix`]), table [rows, D] fp16, temb
/// and out [N, D] f32.
pub fn condition(gpu: &Gpu, labels: &Tensor, table: &Tensor, temb: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let n = labels.shape.first().copied().unwrap_or(0);
    let d = table.dim(-1);
    if labels.dtype != DType::U32
        || labels.shape != [n, LABEL_WORDS]
        || table.dtype != DType::F16
        || temb.shape != [n, d]
        || out.shape != [n, d]
        || !d.is_multiple_of(4)
    {
        return Err(Error::Op(format!(
            "condition: labels {:?}, table {:?}, temb {:?}, out {:?}",
            labels.shape, table.shape, temb.shape, out.shape
        )));
    }
    let params = EmbedParams { n: n as u32, dim: d as u32, rows: table.dim(0) as u32, max_period: MAX_PERIOD };
    let kern = gpu.kernel(&kernel_spec("condition"))?;
    let groups = [((n * d / 4) as u32).div_ceil(64), 1, 1];
    gpu.dispatch(
        &kern,
        "embed",
        &params,
        &[Res::Buf(&labels.buf), Res::Buf(&table.buf), Res::Buf(&temb.buf), Res::Buf(&out.buf)],
        groups,
        0.0,
    )
}

/// 32-bit words of a [`LabelMix`] row.
pub const LABEL_WORDS: usize = 3;

#[cfg(test)]
mod tests {
    #[test]
    fn params_match_the_wgsl_struct() {
        assert_eq!(std::mem::size_of::<super::EmbedParams>(), 16);
        assert_eq!(std::mem::size_of::<super::LabelMix>(), 4 * super::LABEL_WORDS);
    }
}
