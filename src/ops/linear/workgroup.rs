//! The tile configs of the workgroup-memory linear kernel for GPUs (`shaders/linear/workgroup.wgsl`, specialised per
//! config by its override constants), and which of them fit a device.

use crate::gpu::AdapterReport;

/// One tile config of the workgroup-memory kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WgTile {
    /// Rows and columns of y per workgroup.
    pub bm: u32,
    pub bn: u32,
    /// Rows and columns of y per invocation (4 or 8).
    pub tm: u32,
    pub tn: u32,
    /// Depth of one step (a multiple of 4).
    pub bk: u32,
    /// Slices of K computed by separate workgroups and summed by a second dispatch (1: none).
    pub splits: u32,
    /// Products summed in f16 before each add to the f32 accumulators (a divisor of `bk`); 0: f32 arithmetic.
    /// Needs `shader-f16` and fp16 weights.
    pub f16_sums: u32,
}

impl WgTile {
    pub fn threads(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Bytes of workgroup memory the tiles take.
    pub fn shared_bytes(&self) -> u32 {
        let bytes = if self.f16_sums > 0 { 2 } else { 4 };
        bytes * self.bk * (self.bm + self.bn)
    }

    /// The kernel's override constants for this config.
    pub(super) fn constants(&self) -> Vec<(&'static str, f64)> {
        let mut c = vec![
            ("BM", self.bm as f64),
            ("BN", self.bn as f64),
            ("BK", self.bk as f64),
            ("TM", self.tm as f64),
            ("TN", self.tn as f64),
            ("SPLITS", self.splits as f64),
        ];
        if self.f16_sums > 0 {
            c.push(("F16_SUMS", self.f16_sums as f64));
        }
        c
    }
}

impl std::fmt::Display for WgTile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{} ({}x{} per thread)", self.bm, self.bn, self.bk, self.tm, self.tn)?;
        if self.splits > 1 {
            write!(f, ", split-K {}", self.splits)?;
        }
        if self.f16_sums > 0 {
            write!(f, ", f16 products in sums of {}", self.f16_sums)?;
        }
        Ok(())
    }
}

const fn tile(bm: u32, bn: u32, tm: u32, tn: u32, bk: u32) -> WgTile {
    WgTile { bm, bn, tm, tn, bk, splits: 1, f16_sums: 0 }
}

const fn split(t: WgTile, splits: u32) -> WgTile {
    WgTile { splits, ..t }
}

const fn half(t: WgTile) -> WgTile {
    WgTile { f16_sums: F16_SUMS, ..t }
}

/// Products an f16 tile sums in f16 before adding to f32: 4 keeps its error near that of rounding x to f16
/// (see tests/ops.rs).
const F16_SUMS: u32 = 4;

/// The tile configs tried at load on GPUs (`tune::tune_linear`); the f16 ones only where the device has
/// `shader-f16` (`ops::linear_wg_fits`). All fit WebGPU's default limits: at most 256 invocations and 16 KiB of
/// workgroup memory.
pub const WG_TILES: [WgTile; 15] = [
    tile(64, 64, 4, 4, 16),
    tile(64, 64, 8, 8, 16),
    tile(128, 64, 8, 8, 16),
    tile(64, 128, 8, 8, 16),
    tile(32, 64, 4, 8, 16),
    tile(64, 32, 8, 4, 16),
    tile(128, 128, 8, 8, 8),
    split(tile(64, 64, 4, 4, 16), 2),
    split(tile(64, 64, 4, 4, 16), 4),
    split(tile(64, 64, 8, 8, 16), 4),
    half(tile(64, 64, 4, 4, 16)),
    half(tile(64, 64, 8, 8, 16)),
    half(tile(128, 64, 8, 8, 16)),
    half(tile(128, 128, 8, 8, 16)),
    half(split(tile(64, 64, 8, 8, 16), 4)),
];

/// Whether a tile can run y [M, N] on a device with this report (`f16`: whether it reads weights as f16): its
/// invocations and workgroup memory within the device's limits, split-K configs with a scratch buffer of
/// splits x M x N floats within the storage binding limit, and the f16 tiles on a device with `shader-f16`.
pub fn wg_tile_fits(report: &AdapterReport, f16: bool, t: &WgTile, m: usize, n: usize) -> bool {
    (t.f16_sums == 0 || f16)
        && t.threads() <= report.max_compute_invocations_per_workgroup
        && t.shared_bytes() <= report.max_compute_workgroup_storage_size
        && (t.splits == 1 || t.splits as u64 * m as u64 * n as u64 * 4 <= report.max_storage_buffer_binding_size)
}

#[cfg(test)]
mod tests {
    use super::WG_TILES;

    #[test]
    fn tiles_are_what_the_kernel_can_specialise() {
        // Per-invocation blocks of 4 x 4, one or two per side; whole steps of vec4s; at most 4 loads of each tile per
        // invocation (the kernel's named registers).
        for t in WG_TILES {
            assert!(matches!(t.tm, 4 | 8) && matches!(t.tn, 4 | 8), "{t}");
            assert!(t.bm % t.tm == 0 && t.bn % t.tn == 0 && t.bk % 4 == 0, "{t}");
            assert!(t.f16_sums == 0 || t.bk % t.f16_sums == 0, "{t}");
            for rows in [t.bm, t.bn] {
                assert!((rows * t.bk / 4).div_ceil(t.threads()) <= 4, "{t}");
            }
        }
    }
}
