// Linear layer reading weights and inputs through textures: y[m, n] = epilogue(sum_k x[m, k] * w[n, k] + b[n]).
//   xt: rgba32float [rows: M, width: K/4]   texel (k4, m) = x[m, 4k4 .. 4k4+3] (staged by a buffer-to-texture copy)
//   wt: rgba16float [rows: N, width: K/4]   texel (k4, n) = w[n, 4k4 .. 4k4+3] (the nn.Linear layout, copied once)
//   b: [N] fp16 buffer; y: [M, N] f32 buffer.
//
// Why textures: CPU adapters (Mesa's lavapipe) vectorise texel fetches across invocations but load storage buffers
// lane by lane, which made the buffer kernels ~10x slower there. Each invocation computes 8 rows x 32 columns as
// 2 x 8 blocks of 4 x 4, each block one mat4x4 accumulator: per step of 4 along K it fetches 8 texels of x and 32 of w
// and does 1024 multiply-adds. Invocations of a workgroup cover 64 x 8 consecutive rows and share one 32-column
// block, so their weight fetches are the same texels. Tall inputs are split into chunks of rows (`row0`).
// The epilogue (bias, GELU, SiLU, gated residual, position table) is in epilogue.wgsl.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var xt: texture_2d<f32>;
@group(0) @binding(2) var wt: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> b: array<W4>;
@group(0) @binding(4) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

// Rows r..r+3 of x at k4, as the rows of the result: [col j][row i] = x[r + i, 4 k4 + j]. Rows past M are clamped.
fn x_rows(k4: u32, r: u32) -> mat4x4<f32> {
    let last = p.m - 1u;
    return transpose(mat4x4<f32>(
        textureLoad(xt, vec2<u32>(k4, min(r, last)), 0),
        textureLoad(xt, vec2<u32>(k4, min(r + 1u, last)), 0),
        textureLoad(xt, vec2<u32>(k4, min(r + 2u, last)), 0),
        textureLoad(xt, vec2<u32>(k4, min(r + 3u, last)), 0),
    ));
}

// Weight rows c..c+3 at k4 as columns: [col j][row t] = w[c + j, 4 k4 + t]. Columns past N are clamped.
fn w_cols(k4: u32, c: u32) -> mat4x4<f32> {
    let last = p.n - 1u;
    return mat4x4<f32>(
        textureLoad(wt, vec2<u32>(k4, min(c, last)), 0),
        textureLoad(wt, vec2<u32>(k4, min(c + 1u, last)), 0),
        textureLoad(wt, vec2<u32>(k4, min(c + 2u, last)), 0),
        textureLoad(wt, vec2<u32>(k4, min(c + 3u, last)), 0),
    );
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wg.x * 32u;
    let r = (wg.y * 64u + lid) * 8u;
    if (r >= p.m) {
        return;
    }
    var a00 = mat4x4<f32>(); var a01 = mat4x4<f32>(); var a02 = mat4x4<f32>(); var a03 = mat4x4<f32>();
    var a04 = mat4x4<f32>(); var a05 = mat4x4<f32>(); var a06 = mat4x4<f32>(); var a07 = mat4x4<f32>();
    var a10 = mat4x4<f32>(); var a11 = mat4x4<f32>(); var a12 = mat4x4<f32>(); var a13 = mat4x4<f32>();
    var a14 = mat4x4<f32>(); var a15 = mat4x4<f32>(); var a16 = mat4x4<f32>(); var a17 = mat4x4<f32>();
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        let x0 = x_rows(k4, r);
        let x1 = x_rows(k4, r + 4u);
        let w0 = w_cols(k4, c);
        a00 += x0 * w0; a10 += x1 * w0;
        let w1 = w_cols(k4, c + 4u);
        a01 += x0 * w1; a11 += x1 * w1;
        let w2 = w_cols(k4, c + 8u);
        a02 += x0 * w2; a12 += x1 * w2;
        let w3 = w_cols(k4, c + 12u);
        a03 += x0 * w3; a13 += x1 * w3;
        let w4_ = w_cols(k4, c + 16u);
        a04 += x0 * w4_; a14 += x1 * w4_;
        let w5 = w_cols(k4, c + 20u);
        a05 += x0 * w5; a15 += x1 * w5;
        let w6 = w_cols(k4, c + 24u);
        a06 += x0 * w6; a16 += x1 * w6;
        let w7 = w_cols(k4, c + 28u);
        a07 += x0 * w7; a17 += x1 * w7;
    }
    store_block(r, c, a00); store_block(r, c + 4u, a01); store_block(r, c + 8u, a02); store_block(r, c + 12u, a03);
    store_block(r, c + 16u, a04); store_block(r, c + 20u, a05); store_block(r, c + 24u, a06); store_block(r, c + 28u, a07);
    store_block(r + 4u, c, a10); store_block(r + 4u, c + 4u, a11); store_block(r + 4u, c + 8u, a12);
    store_block(r + 4u, c + 12u, a13); store_block(r + 4u, c + 16u, a14); store_block(r + 4u, c + 20u, a15);
    store_block(r + 4u, c + 24u, a16); store_block(r + 4u, c + 28u, a17);
}
