// Linear layer reading weights and inputs through textures: y[m, n] = epilogue(sum_k x[m, k] * w[n, k] + b[n]).
//   xt: rgba32float [rows: M, width: K/4]   texel (k4, m) = x[m, 4k4 .. 4k4+3] (staged by a buffer-to-texture copy)
//   wt: [rows: N, width: K/4]               texel (k4, n) = w[n, 4k4 .. 4k4+3] (the nn.Linear layout): an
//                                            rgba16float weight, or for a matmul the rgba32float second operand;
//                                            declared by linear_tex_wf16.wgsl / linear_tex_wf32.wgsl
//   b: [N] fp16 buffer; y: [M, N] f32 buffer.
//
// Why textures: CPU adapters (Mesa's lavapipe) load storage buffers lane by lane, which made the buffer kernels ~10x
// slower there, while a texel load fetches a whole vector for all invocations of a SIMD batch. Both operands are
// read-only storage textures: on lavapipe their loads are inlined address arithmetic, where a sampled texture's
// `textureLoad` is a call into a generic fetch function (with per-invocation mip-level lookups), about twice the cost.
// One of two entry points follows this file: linear_tex_plain.wgsl (8 rows x 32 columns per invocation) or
// linear_tex_sg.wgsl (4 x 64, weights fetched once per subgroup and broadcast). Tall inputs are split into chunks of
// rows (`row0`). The epilogue (bias, GELU, SiLU, gated residual, position table) is in common/epilogue.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> b: array<W4>;
@group(0) @binding(4) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

// Rows r..r+3 of x at k4, as the rows of the result: [col j][row i] = x[r + i, 4 k4 + j]. Rows past M are clamped.
fn x_rows(k4: u32, r: u32) -> mat4x4<f32> {
    let last = p.m - 1u;
    return transpose(mat4x4<f32>(
        load_xt(vec2<u32>(k4, min(r, last))),
        load_xt(vec2<u32>(k4, min(r + 1u, last))),
        load_xt(vec2<u32>(k4, min(r + 2u, last))),
        load_xt(vec2<u32>(k4, min(r + 3u, last))),
    ));
}

// Weight row n at k4 (w[n, 4 k4 .. 4 k4 + 3]); rows past N are clamped.
fn w_row(k4: u32, n: u32) -> vec4<f32> {
    return load_wt(vec2<u32>(k4, min(n, p.n - 1u)));
}

// Stores the 4 x 4 block a (a[col j][row i] = y[r + i, c + j] before the bias) with the epilogue.
fn store_block(r: u32, c: u32, a: mat4x4<f32>) {
    if (c >= p.n) {
        return;
    }
    let rows = transpose(a);
    let bias = w4(b[c / 4u]);
    for (var i = 0u; i < 4u; i++) {
        if (r + i < p.m) {
            finish(p.row0 + r + i, c / 4u, rows[i] + bias);
        }
    }
}
