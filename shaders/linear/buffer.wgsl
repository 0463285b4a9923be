// Linear layer on fp16 weights: y[m, n] = epilogue(sum_k x[m, k] * w[n, k] + b[n]).
//   x: [M, K] f32 row-major; w: [N, K] fp16 (PyTorch nn.Linear layout); b: [N] fp16; y: [M, N] f32.
//   Needs K % 4 == 0 and N % 4 == 0 (checked on the Rust side).
//
// `main` (register-tiled): each thread computes a 4x4 block of y, rows m0..m0+3 and columns n0..n0+3; a workgroup of
// 8x8 threads covers a 32x32 tile. K is walked 4 at a time: 4 vec4 loads of x, 4 loads of 4 halves of w, then one
// vec4 x mat4x4 product per row (16 dot products, each load used 4 times). No workgroup memory: shared-memory tiling
// was slower on the CPU adapters, and these tiles stay in cache on GPUs.
// `simple`: one row and 4 columns per thread, the reference kernel and the benchmark baseline.
//
// The epilogue (bias, GELU, SiLU, gated residual, position table) is in common/epilogue.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<W4>;
@group(0) @binding(3) var<storage, read> b: array<W4>;
@group(0) @binding(4) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col4 = gid.x;
    let n0 = col4 * 4u;
    let m0 = gid.y * 4u;
    if (n0 >= p.n || m0 >= p.m) {
        return;
    }
    let k4 = p.k / 4u;
    // Rows past M are clamped for loading; their results are not stored.
    let last = p.m - 1u;
    let r0 = m0 * k4;
    let r1 = min(m0 + 1u, last) * k4;
    let r2 = min(m0 + 2u, last) * k4;
    let r3 = min(m0 + 3u, last) * k4;
    let c0 = n0 * k4;
    let c1 = c0 + k4;
    let c2 = c1 + k4;
    let c3 = c2 + k4;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        // Columns of wt are the 4 weight rows n0..n0+3 at k..k+3, so x_row * wt = 4 dot products.
        let wt = mat4x4<f32>(w4(w[c0 + k]), w4(w[c1 + k]), w4(w[c2 + k]), w4(w[c3 + k]));
        acc0 += x[r0 + k] * wt;
        acc1 += x[r1 + k] * wt;
        acc2 += x[r2 + k] * wt;
        acc3 += x[r3 + k] * wt;
    }
    let bias = w4(b[col4]);
    finish(m0, col4, acc0 + bias);
    if (m0 + 1u < p.m) {
        finish(m0 + 1u, col4, acc1 + bias);
    }
    if (m0 + 2u < p.m) {
        finish(m0 + 2u, col4, acc2 + bias);
    }
    if (m0 + 3u < p.m) {
        finish(m0 + 3u, col4, acc3 + bias);
    }
}

@compute @workgroup_size(64)
fn simple(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n4 = p.n / 4u;
    let idx = flat_index(gid, nwg);
    if (idx >= p.m * n4) {
        return;
    }
    let m = idx / n4;
    let col4 = idx % n4;
    let k4 = p.k / 4u;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let xv = x[m * k4 + k];
        acc += vec4<f32>(
            dot(xv, w4(w[(col4 * 4u) * k4 + k])),
            dot(xv, w4(w[(col4 * 4u + 1u) * k4 + k])),
            dot(xv, w4(w[(col4 * 4u + 2u) * k4 + k])),
            dot(xv, w4(w[(col4 * 4u + 3u) * k4 + k])),
        );
    }
    finish(m, col4, acc + w4(b[col4]));
}
