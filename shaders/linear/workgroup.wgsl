// The workgroup-memory linear kernel for GPUs (ops::linear, LinearKernel::Workgroup):
//   y[m, n] = epilogue(sum_k x[m, k] * w[n, k] + b[n]), with the bindings of buffer.wgsl,
// specialised per tile config by the override constants below (ops::linear::WgTile; the tuner picks one per layer
// shape at load).
//
// A workgroup computes BM x BN outputs of y with TY x TX invocations (TY = BM / TM, TX = BN / TN), each TM x TN
// outputs: TM / 4 x TN / 4 blocks of 4 x 4 (TM, TN: 4 or 8), each block a matrix whose column e holds the 4 outputs of
// one row. Invocation (ty, tx) owns rows 4 (i TY + ty) .. + 3 and vec4 columns j TX + tx of the tile for block (i, j):
// thread rows and columns interleave across the tile, so the lanes of a subgroup read consecutive vec4s.
// Per step the workgroup loads BM rows x BK of x and BN rows x BK of w into workgroup memory, transposed to [k][m]
// and [k][n] (the w tile after the x tile in `tiles`), so that at each depth an invocation reads its rows and columns
// as vec4s and adds their outer product to each block. The next step's tiles are read into registers (X_LOADS and
// W_LOADS vec4s per invocation, at most 4 each) while the current one computes. Rows past M, columns past N and
// depth past K are loaded as zeros and not stored.
//
// The per-invocation state is named struct members, never an indexed array: shader compilers do not reliably keep
// such arrays in registers. Blocks and loads beyond a config's TM, TN and load counts sit behind conditions on
// override constants, which the pipeline's specialisation removes.
//
// Split-K (SPLITS > 1), for layers with few output tiles: workgroup z of SPLITS takes one slice of K and stores its
// raw sums in the scratch buffer `part` [SPLITS, M, N]; `wg_reduce` adds the slices, the bias and the epilogue.
//
// The tiles' element type (`WgEl`, `Sum`), how loads become tile elements (`x_el`, `w_el`), the accumulators (`Acc`)
// and the products of one step (`tile_step`) come from workgroup_f32.wgsl (f32 products) or workgroup_f16.wgsl
// (f16 products summed in short runs, devices with shader-f16).

override BM: u32 = 64u;
override BN: u32 = 64u;
override BK: u32 = 16u;
override TM: u32 = 4u;
override TN: u32 = 4u;
override SPLITS: u32 = 1u;

override BK4: u32 = BK / 4u;
override TX: u32 = BN / TN;
override TY: u32 = BM / TM;
override THREADS: u32 = TX * TY;
override X_LOADS: u32 = (BM * BK4 + THREADS - 1u) / THREADS;
override W_LOADS: u32 = (BN * BK4 + THREADS - 1u) / THREADS;
// Vec4s of the x tile; the w tile follows it.
override X_LEN: u32 = BK * BM / 4u;
override TILES_LEN: u32 = BK * (BM + BN) / 4u;

var<workgroup> tiles: array<WgEl, TILES_LEN>;
@group(0) @binding(6) var<storage, read_write> part: array<vec4<f32>>;

// This invocation's blocks of partial sums: b{i}{j} is block (i, j); those past TM / 4, TN / 4 stay unused.
struct Blocks {
    b00: mat4x4<Sum>,
    b01: mat4x4<Sum>,
    b10: mat4x4<Sum>,
    b11: mat4x4<Sum>,
}

// Up to 4 vec4s of a tile read ahead into registers.
struct Loads {
    v0: WgEl,
    v1: WgEl,
    v2: WgEl,
    v3: WgEl,
}

// Vec4 i of a step's tile of x (from_w false) or w (true) at vec4 depth k0: row i / BK4 of the tile, from row `base`
// of the matrix, vec4 column k0 + i % BK4; zero past the tile, the matrix or `k_end`.
fn load_el(from_w: bool, i: u32, base: u32, k0: u32, k_end: u32) -> WgEl {
    let r = i / BK4;
    let row = base + r;
    let kk = k0 + i % BK4;
    if (r >= select(BM, BN, from_w) || row >= select(p.m, p.n, from_w) || kk >= k_end) {
        return WgEl(0.0);
    }
    let at = row * (p.k / 4u) + kk;
    if (from_w) {
        return w_el(w[at]);
    }
    return x_el(x[at]);
}

// This invocation's vec4s of a step's tile: lid, lid + THREADS, ... (X_LOADS or W_LOADS of them).
fn fetch(from_w: bool, lid: u32, base: u32, k0: u32, k_end: u32) -> Loads {
    let n = select(X_LOADS, W_LOADS, from_w);
    var l = Loads(load_el(from_w, lid, base, k0, k_end), WgEl(0.0), WgEl(0.0), WgEl(0.0));
    if (n > 1u) {
        l.v1 = load_el(from_w, lid + THREADS, base, k0, k_end);
    }
    if (n > 2u) {
        l.v2 = load_el(from_w, lid + 2u * THREADS, base, k0, k_end);
    }
    if (n > 3u) {
        l.v3 = load_el(from_w, lid + 3u * THREADS, base, k0, k_end);
    }
    return l;
}

// Stores vec4 i of a loaded tile transposed: element (r, 4c + e) goes to depth 4c + e, row or column r.
fn store_el(from_w: bool, i: u32, v: WgEl) {
    let rows = select(BM, BN, from_w);
    let r = i / BK4;
    if (r >= rows) {
        return;
    }
    let at = select(0u, X_LEN, from_w) + (i % BK4) * rows + r / 4u;
    let q = rows / 4u;
    tiles[at][r % 4u] = v.x;
    tiles[at + q][r % 4u] = v.y;
    tiles[at + 2u * q][r % 4u] = v.z;
    tiles[at + 3u * q][r % 4u] = v.w;
}

fn stash(from_w: bool, lid: u32, l: Loads) {
    let n = select(X_LOADS, W_LOADS, from_w);
    store_el(from_w, lid, l.v0);
    if (n > 1u) {
        store_el(from_w, lid + THREADS, l.v1);
    }
    if (n > 2u) {
        store_el(from_w, lid + 2u * THREADS, l.v2);
    }
    if (n > 3u) {
        store_el(from_w, lid + 3u * THREADS, l.v3);
    }
}

fn outer(a: WgEl, b: WgEl) -> mat4x4<Sum> {
    return mat4x4<Sum>(a.x * b, a.y * b, a.z * b, a.w * b);
}

// Adds the products of depth kk of the tiles to this invocation's blocks.
fn add_products(s: ptr<function, Blocks>, kk: u32, tx: u32, ty: u32) {
    let a0 = tiles[kk * (BM / 4u) + ty];
    let a1 = tiles[kk * (BM / 4u) + select(0u, TY, TM == 8u) + ty];
    let b0 = tiles[X_LEN + kk * (BN / 4u) + tx];
    let b1 = tiles[X_LEN + kk * (BN / 4u) + select(0u, TX, TN == 8u) + tx];
    (*s).b00 += outer(a0, b0);
    if (TN == 8u) {
        (*s).b01 += outer(a0, b1);
    }
    if (TM == 8u) {
        (*s).b10 += outer(a1, b0);
    }
    if (TM == 8u && TN == 8u) {
        (*s).b11 += outer(a1, b1);
    }
}

// Row m of y at vec4 column col: the epilogue, or with split-K this slice's raw sums.
fn store_row(m: u32, col: u32, v: vec4<f32>, z: u32) {
    if (m < p.m) {
        if (SPLITS > 1u) {
            part[(z * p.m + m) * (p.n / 4u) + col] = v;
        } else {
            finish(m, col, v);
        }
    }
}

// Block rows m .. m + 3 at vec4 column col (the bias added here without split-K, by wg_reduce with it).
fn store_block(blk: mat4x4<f32>, m: u32, col: u32, z: u32) {
    if (col * 4u >= p.n) {
        return;
    }
    var bias = vec4<f32>(0.0);
    if (SPLITS == 1u) {
        bias = w4(b[col]);
    }
    store_row(m, col, blk[0] + bias, z);
    store_row(m + 1u, col, blk[1] + bias, z);
    store_row(m + 2u, col, blk[2] + bias, z);
    store_row(m + 3u, col, blk[3] + bias, z);
}

@compute @workgroup_size(THREADS)
fn wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tx = lid % TX;
    let ty = lid / TX;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    // This workgroup's slice of K in vec4s (all of it without split-K), in whole steps.
    let k4 = p.k / 4u;
    let slice = ((k4 + SPLITS - 1u) / SPLITS + BK4 - 1u) / BK4 * BK4;
    let k_lo = min(wid.z * slice, k4);
    let k_hi = select(min(k_lo + slice, k4), k4, SPLITS == 1u);
    var acc = Acc();
    var xr = fetch(false, lid, m0, k_lo, k_hi);
    var wr = fetch(true, lid, n0, k_lo, k_hi);
    for (var k0 = k_lo; k0 < k_hi; k0 += BK4) {
        stash(false, lid, xr);
        stash(true, lid, wr);
        workgroupBarrier();
        if (k0 + BK4 < k_hi) {
            xr = fetch(false, lid, m0, k0 + BK4, k_hi);
            wr = fetch(true, lid, n0, k0 + BK4, k_hi);
        }
        tile_step(&acc, tx, ty);
        workgroupBarrier();
    }
    let m = m0 + 4u * ty;
    let col = n0 / 4u + tx;
    store_block(acc.b00, m, col, wid.z);
    if (TN == 8u) {
        store_block(acc.b01, m, col + TX, wid.z);
    }
    if (TM == 8u) {
        store_block(acc.b10, m + 4u * TY, col, wid.z);
    }
    if (TM == 8u && TN == 8u) {
        store_block(acc.b11, m + 4u * TY, col + TX, wid.z);
    }
}

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
