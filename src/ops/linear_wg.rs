//! The workgroup-memory linear kernel for GPUs, generated per tile config: each thread's accumulators are named
//! variables, so that no shader compiler has to promote an indexed array to registers.
//!
//! A workgroup computes BM x BN outputs of y with (BM / TM) x (BN / TN) invocations, each TM x TN outputs. Per step it
//! loads BM rows x BK of x and BN rows x BK of w (fp16 widened to f32) into workgroup memory, transposed to [k][m]
//! and [k][n], so that at each k a thread reads its rows as TM / 4 vec4s and its columns as TN / 4 vec4s and does
//! TM x TN multiply-adds with them. Thread rows and columns are interleaved across the tile (vec4 block i * TY + ty,
//! j * TX + tx), so the lanes of a subgroup read consecutive vec4s. The next step's tiles are read from memory into
//! registers while the current step computes. Rows past M, columns past N and depth past K are loaded as zeros and
//! not stored. The bindings, `w4` and `finish` are linear.wgsl's and common/epilogue.wgsl's.
//!
//! With `f16_sums` > 0 (devices with `shader-f16` only) the tile multiplies in f16: x is rounded to f16 as it is
//! loaded (clamped to the f16 range) and w is kept as read, so both tiles in workgroup memory are `vec4<f16>` (half
//! the bytes); each thread sums `f16_sums` consecutive products per output in f16 (`vec4<f16>` multiply-adds, which
//! GPUs with packed f16 math issue at twice the f32 rate), then adds that short partial sum to its f32 accumulator.
//! So accumulation over K stays in f32; the error is the rounding of x and of a few f16 terms.
//!
//! Split-K (`splits` > 1), for layers with few output tiles (N = 1152 at M = 512 makes 144 workgroups, about one per
//! multiprocessor on a large GPU): workgroup z of `splits` takes one slice of K and stores its raw sums in a scratch
//! buffer [splits, M, N]; a second entry point, `wg_reduce`, adds the slices, the bias and the epilogue.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// One tile config of the workgroup-memory kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WgTile {
    /// Rows and columns of y per workgroup.
    pub bm: u32,
    pub bn: u32,
    /// Rows and columns of y per invocation (multiples of 4).
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

/// The WGSL of the kernel for one tile config (generated once per config and kept).
pub fn source(t: WgTile) -> &'static str {
    static CACHE: OnceLock<Mutex<HashMap<WgTile, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(t).or_insert_with(|| Box::leak(generate(t).into_boxed_str()))
}

fn generate(t: WgTile) -> String {
    let (vm, vn) = (t.tm / 4, t.tn / 4);
    let (tx, ty) = (t.bn / t.tn, t.bm / t.tm);
    let threads = tx * ty;
    let bk4 = t.bk / 4;
    let x_loads = (t.bm * bk4).div_ceil(threads);
    let w_loads = (t.bn * bk4).div_ceil(threads);
    // The element type of the tiles in workgroup memory, and how a loaded x or w vec4 becomes one.
    let half = t.f16_sums > 0;
    let (el, load_x, load_w) = if half {
        ("vec4<f16>", "h4(x[m * k4 + kk])", "w[n * k4 + kk]")
    } else {
        ("vec4<f32>", "x[m * k4 + kk]", "w4(w[n * k4 + kk])")
    };
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "// Generated by ops::linear_wg for tile {t}.");
    let _ = writeln!(w, "const BM: u32 = {}u;\nconst BN: u32 = {}u;\nconst BK4: u32 = {bk4}u;", t.bm, t.bn);
    let _ = writeln!(w, "const TX: u32 = {tx}u;\nconst TY: u32 = {ty}u;\nconst THREADS: u32 = {threads}u;");
    let _ = writeln!(w, "alias WgEl = {el};");
    let _ = writeln!(w, "var<workgroup> xs: array<WgEl, {}>;", t.bk * t.bm / 4);
    let _ = writeln!(w, "var<workgroup> ws: array<WgEl, {}>;", t.bk * t.bn / 4);
    let _ = writeln!(w, "const SPLITS: u32 = {}u;", t.splits);
    if t.splits > 1 {
        w.push_str("@group(0) @binding(6) var<storage, read_write> part: array<vec4<f32>>;\n");
    }
    let body = r#"
// Column kk of row m of x (row stride k4 vec4s); zero past row M or past column `lim`.
fn wg_load_x(i: u32, m_base: u32, k4_base: u32, k4: u32, lim: u32) -> WgEl {
    let r = i / BK4;
    let m = m_base + r;
    let kk = k4_base + i % BK4;
    if (r < BM && m < p.m && kk < lim) {
        return LOAD_X;
    }
    return WgEl(0.0);
}

fn wg_load_w(i: u32, n_base: u32, k4_base: u32, k4: u32, lim: u32) -> WgEl {
    let r = i / BK4;
    let n = n_base + r;
    let kk = k4_base + i % BK4;
    if (r < BN && n < p.n && kk < lim) {
        return LOAD_W;
    }
    return WgEl(0.0);
}

// Element (r, 4c + e) of a loaded row block goes to row 4c + e, column r of the transposed tile.
fn wg_store_x(i: u32, v: WgEl) {
    let r = i / BK4;
    if (r < BM) {
        let at = (i % BK4) * BM + r / 4u;
        xs[at][r % 4u] = v.x;
        xs[at + BM / 4u][r % 4u] = v.y;
        xs[at + BM / 2u][r % 4u] = v.z;
        xs[at + 3u * BM / 4u][r % 4u] = v.w;
    }
}

fn wg_store_w(i: u32, v: WgEl) {
    let r = i / BK4;
    if (r < BN) {
        let at = (i % BK4) * BN + r / 4u;
        ws[at][r % 4u] = v.x;
        ws[at + BN / 4u][r % 4u] = v.y;
        ws[at + BN / 2u][r % 4u] = v.z;
        ws[at + 3u * BN / 4u][r % 4u] = v.w;
    }
}

@compute @workgroup_size(THREADS)
fn wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tx = lid % TX;
    let ty = lid / TX;
    let m_base = wid.y * BM;
    let n_base = wid.x * BN;
    let k4 = p.k / 4u;
    // This workgroup's slice of K (all of it without split-K), in whole steps.
    let k_slice = (k4 + SPLITS - 1u) / SPLITS;
    let k_lo = min(wid.z * ((k_slice + BK4 - 1u) / BK4) * BK4, k4);
    let k_hi = select(min(k_lo + ((k_slice + BK4 - 1u) / BK4) * BK4, k4), k4, SPLITS == 1u);
"#;
    w.push_str(&body.replace("LOAD_X", load_x).replace("LOAD_W", load_w));
    let comp = ["x", "y", "z", "w"];
    for i in 0..vm {
        for e in 0..4 {
            for j in 0..vn {
                let _ = writeln!(w, "    var c{i}_{e}_{j} = vec4<f32>(0.0);");
            }
        }
    }
    for l in 0..x_loads {
        let _ = writeln!(w, "    var xr{l} = wg_load_x(lid + {}u, m_base, k_lo, k4, k_hi);", l * threads);
    }
    for l in 0..w_loads {
        let _ = writeln!(w, "    var wr{l} = wg_load_w(lid + {}u, n_base, k_lo, k4, k_hi);", l * threads);
    }
    w.push_str("    for (var k4_base = k_lo; k4_base < k_hi; k4_base += BK4) {\n");
    for l in 0..x_loads {
        let _ = writeln!(w, "        wg_store_x(lid + {}u, xr{l});", l * threads);
    }
    for l in 0..w_loads {
        let _ = writeln!(w, "        wg_store_w(lid + {}u, wr{l});", l * threads);
    }
    w.push_str("        workgroupBarrier();\n        let next = k4_base + BK4;\n        if (next < k_hi) {\n");
    for l in 0..x_loads {
        let _ = writeln!(w, "            xr{l} = wg_load_x(lid + {}u, m_base, next, k4, k_hi);", l * threads);
    }
    for l in 0..w_loads {
        let _ = writeln!(w, "            wr{l} = wg_load_w(lid + {}u, n_base, next, k4, k_hi);", l * threads);
    }
    w.push_str("        }\n");
    // f32: one loop over the step's depth. f16: that depth in runs of f16_sums, each summed in f16 (h) and then
    // added to the f32 accumulators (c).
    let (acc, run) = if half { ("h", t.f16_sums) } else { ("c", t.bk) };
    if half {
        let _ = writeln!(w, "        for (var k0 = 0u; k0 < {}u; k0 += {run}u) {{", t.bk);
        for i in 0..vm {
            for e in 0..4 {
                for j in 0..vn {
                    let _ = writeln!(w, "            var h{i}_{e}_{j} = vec4<f16>(0.0);");
                }
            }
        }
    }
    let _ = writeln!(
        w,
        "            for (var kk = {}; kk < {}; kk++) {{",
        if half { "k0" } else { "0u" },
        if half { format!("k0 + {run}u") } else { format!("{run}u") }
    );
    for i in 0..vm {
        let _ = writeln!(w, "                let a{i} = xs[kk * (BM / 4u) + {}u + ty];", i * ty);
    }
    for j in 0..vn {
        let _ = writeln!(w, "                let b{j} = ws[kk * (BN / 4u) + {}u + tx];", j * tx);
    }
    for i in 0..vm {
        for (e, c) in comp.iter().enumerate() {
            for j in 0..vn {
                let _ = writeln!(w, "                {acc}{i}_{e}_{j} += a{i}.{c} * b{j};");
            }
        }
    }
    w.push_str("            }\n");
    if half {
        for i in 0..vm {
            for e in 0..4 {
                for j in 0..vn {
                    let _ = writeln!(w, "            c{i}_{e}_{j} += vec4<f32>(h{i}_{e}_{j});");
                }
            }
        }
        w.push_str("        }\n");
    }
    w.push_str("        workgroupBarrier();\n    }\n");
    for j in 0..vn {
        let _ = writeln!(w, "    let col{j} = n_base / 4u + {}u + tx;", j * tx);
        let _ = writeln!(w, "    if (col{j} * 4u < p.n) {{");
        if t.splits == 1 {
            let _ = writeln!(w, "        let bias{j} = w4(b[col{j}]);");
        }
        for i in 0..vm {
            for e in 0..4 {
                let m = format!("m_base + {}u + 4u * ty", 4 * i * ty + e);
                // Split-K: this slice's raw sums; wg_reduce adds the bias and applies the epilogue.
                let store = if t.splits > 1 {
                    format!("part[(wid.z * p.m + {m}) * (p.n / 4u) + col{j}] = c{i}_{e}_{j};")
                } else {
                    format!("finish({m}, col{j}, c{i}_{e}_{j} + bias{j});")
                };
                let _ = writeln!(w, "        if ({m} < p.m) {{ {store} }}");
            }
        }
        w.push_str("    }\n");
    }
    w.push_str("}\n");
    if t.splits > 1 {
        w.push_str(
            r#"
// Sums the split-K slices of 4 outputs per invocation, adds the bias and applies the epilogue.
@compute @workgroup_size(64)
fn wg_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n4 = p.n / 4u;
    let idx = flat_index(gid, nwg);
    if (idx >= p.m * n4) {
        return;
    }
    let m = idx / n4;
    let col4 = idx % n4;
    var sum = w4(b[col4]);
    for (var z = 0u; z < SPLITS; z++) {
        sum += part[(z * p.m + m) * n4 + col4];
    }
    finish(m, col4, sum);
}
"#,
        );
    }
    s
}
