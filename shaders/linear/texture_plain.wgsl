// The texture linear kernel without subgroups (see linear_tex.wgsl). Each invocation computes 8 rows x 32 columns as
// 2 x 8 blocks of 4 x 4, each block one mat4x4 accumulator: per step of 4 along K it loads 8 texels of x and 32 of w
// and does 1024 multiply-adds. Invocations of a workgroup (WG_ROWS of them) cover WG_ROWS x 8 consecutive rows
// and share one 32-column block, so their weight loads are the same texels.

// Weight rows c..c+3 at k4 as columns: [col j][row t] = w[c + j, 4 k4 + t].
fn w_cols(k4: u32, c: u32) -> mat4x4<f32> {
    return mat4x4<f32>(w_row(k4, c), w_row(k4, c + 1u), w_row(k4, c + 2u), w_row(k4, c + 3u));
}

// Invocations per workgroup (each 8 rows): 64, or fewer for short inputs (see ops::linear).
override WG_ROWS: u32 = 64u;

@compute @workgroup_size(WG_ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wg.x * 32u;
    let r = (wg.y * WG_ROWS + lid) * 8u;
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
    // The stores in a loop over the blocks, not 16 inlined copies of the store and its epilogue: unrolled, they were
    // most of the code SwiftShader compiles (about 4x this pipeline's creation time there).
    var blocks = array<mat4x4<f32>, 16>(a00, a01, a02, a03, a04, a05, a06, a07, a10, a11, a12, a13, a14, a15, a16, a17);
    for (var i = 0u; i < 16u; i++) {
        store_block(r + (i / 8u) * 4u, c + (i % 8u) * 4u, blocks[i]);
    }
}
