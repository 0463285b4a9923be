//! The split attention kernel of GPUs (`shaders/attention/split.wgsl`, specialised per split by its override
//! constants, with `split_head.wgsl` written out for the head dim).

use super::head::per_head_dim;
use super::Problem;
use crate::error::Result;
use crate::gpu::{Bind, Dispatch, Gpu, KernelSpec, Res};

const SPLIT: &str = crate::shader!("attention/split");
const HEAD: &str = crate::shader!("attention/split_head");

/// (queries per workgroup, invocations per query) of the configs tried at load on GPUs; QW * G = 64 invocations.
pub const SPLITS: [(u32, u32); 4] = [(8, 8), (16, 4), (32, 2), (64, 1)];

/// Invocations per workgroup and bytes of workgroup memory of split `(QW, G)` (whatever the head dim: the output is
/// merged in chunks of G vec4s).
fn footprint((qw, g): (u32, u32)) -> (u32, u32) {
    (qw * g, 2 * qw * g * 4 + qw * g * g * 16)
}

/// Whether split `ATTENTION_SPLITS[i]` fits this device: its invocations and the workgroup memory that merges the
/// partial results within the device's limits.
pub fn attention_split_fits(gpu: &Gpu, i: usize) -> bool {
    SPLITS.get(i).is_some_and(|&split| {
        let (threads, bytes) = footprint(split);
        threads <= gpu.report.max_compute_invocations_per_workgroup
            && bytes <= gpu.report.max_compute_workgroup_storage_size
    })
}

/// The split kernel with split `SPLITS[i]` (checked by the caller).
pub(super) fn dispatch(gpu: &Gpu, p: &Problem<'_>, i: usize) -> Result<Dispatch> {
    let (qw, g) = SPLITS[i];
    let head = per_head_dim(HEAD, p.head_dim as u32 / 4);
    let kern = gpu.kernel(&KernelSpec {
        name: "attention",
        variant: format!("split_hd{}", p.head_dim).into(),
        source: &[SPLIT, &head],
        entry: "main",
        binds: &[Bind::Read, Bind::ReadWrite],
        constants: vec![("QW", qw as f64), ("G", g as f64)],
        ..Default::default()
    })?;
    let groups = [p.params.tokens.div_ceil(qw), p.params.heads, p.batch as u32];
    let res = [Res::Buf(&p.qkv.buf), Res::Buf(&p.out.buf)];
    gpu.dispatch(&kern, "attention", &p.params, &res, groups, p.flops)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_split_has_64_invocations_and_fits_default_limits() {
        for split in super::SPLITS {
            let (threads, bytes) = super::footprint(split);
            assert_eq!(threads, 64);
            assert!(bytes <= 16384, "{split:?}: {bytes} bytes");
        }
    }
}
