// 2D convolution (3x3, stride 1, zero padding 1, or 1x1) as an implicit GEMM over NHWC activations:
//   y[n, oy, ox, co] = b[co] + sum_{ky, kx, ci} w[co, ky, kx, ci] * x[n, iy, ix, ci]  (+ res[n, oy, ox, co])
// with iy = oy + ky - pad, ix = ox + kx - pad, or, with UPSAMPLE (flags bit 2), on the nearest-x2 upsampled input:
// iy = (oy + ky - pad) / 2 over an input of half the size (the decoder's Upsample2D folded into its conv).
//   x: [N, IH, IW, Cin] f32; w: fp16 [Cout, KH*KW*Cin] in (ky, kx, ci) order, read through `w_row4` (weights.wgsl
//   variant: storage buffer or texture); b: [Cout] fp16; res, y: [N, OH, OW, Cout] f32.
// A dispatch may cover a channel slice of the layer (activations too large for one storage binding are kept in
// channel parts): x holds the layer's input channels ci0..ci0+cin and y its output channels co0..co0+cout, read from
// weights whose rows are `wcin` channels per tap. With ACCUMULATE (flags bit 1) the bias is left out and y's previous
// value is added instead: the partial sums over input parts add up in y. Bit 0 adds `res`. The flags are uniforms,
// not override constants: one pipeline per weight variant serves every conv of the decoder.
//
// Each invocation computes 8 consecutive output pixels x 32 output channels as 2 x 8 mat4x4 accumulators; the 64
// invocations of a workgroup cover 512 pixels and share one 32-channel block, so their weight fetches coincide.
// Per step of 4 input channels at one tap: 8 activation loads, 32 weight fetches, 1024 multiply-adds.
// Needs Cin % 4 == 0 and Cout % 4 == 0 (the host pads conv_out's 3 channels to 4).

struct Params {
    n: u32,
    oh: u32,
    ow: u32,
    cin: u32,
    cout: u32,
    ksize: u32,
    pad: u32,
    flags: u32,
    wcin: u32,
    ci0: u32,
    co0: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
// binding 2: the weights, declared by the weights.wgsl variant together with `w_row4`.
@group(0) @binding(3) var<storage, read> b: array<W4>;
@group(0) @binding(4) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

// Where output pixel q (flat over N*OH*OW) reads its input at tap (ky, kx): the vec4 index of channel 0 in x, or -1
// where the tap falls in the zero padding. Computed once per tap, outside the loop over channels.
fn tap_base(q: u32, ky: u32, kx: u32) -> i32 {
    let total = p.n * p.oh * p.ow;
    let qq = min(q, total - 1u);
    let ox = qq % p.ow;
    let oy = (qq / p.ow) % p.oh;
    let n = qq / (p.ow * p.oh);
    let iy = i32(oy + ky) - i32(p.pad);
    let ix = i32(ox + kx) - i32(p.pad);
    if (iy < 0 || ix < 0 || iy >= i32(p.oh) || ix >= i32(p.ow)) {
        return -1;
    }
    var ih = p.oh;
    var iw = p.ow;
    var sy = u32(iy);
    var sx = u32(ix);
    if ((p.flags & 4u) != 0u) {
        ih = p.oh / 2u;
        iw = p.ow / 2u;
        sy = sy / 2u;
        sx = sx / 2u;
    }
    return i32(((n * ih + sy) * iw + sx) * (p.cin / 4u));
}

// Channels 4*c4..4*c4+3 of the input at `base` (from tap_base); 0 in the padding (no branch: a padded tap reads
// channel group c4 of pixel 0 and drops it).
fn x_at(base: i32, c4: u32) -> vec4<f32> {
    return select(x[u32(max(base, 0)) + c4], vec4<f32>(0.0), base < 0);
}

// Four pixels' inputs at channel group c4 as the rows of the result: [col j][row i] = x of pixel i, channel 4 c4 + j.
fn x_rows(b0: i32, b1: i32, b2: i32, b3: i32, c4: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(x_at(b0, c4), x_at(b1, c4), x_at(b2, c4), x_at(b3, c4)));
}

// Output channels c..c+3 at weight column group k4 as columns: [col j][row t] = w[c + j, 4 k4 + t].
fn w_cols(k4: u32, c: u32) -> mat4x4<f32> {
    let last = p.cout - 1u;
    let r = p.co0;
    return mat4x4<f32>(w_row4(r + min(c, last), k4), w_row4(r + min(c + 1u, last), k4), w_row4(r + min(c + 2u, last), k4), w_row4(r + min(c + 3u, last), k4));
}

fn store_block(q: u32, c: u32, a: mat4x4<f32>) {
    if (c >= p.cout) {
        return;
    }
    let total = p.n * p.oh * p.ow;
    let rows = transpose(a);
    let c4n = p.cout / 4u;
    let accumulate = (p.flags & 2u) != 0u;
    var bias = vec4<f32>(0.0);
    if (!accumulate) {
        bias = w4(b[(p.co0 + c) / 4u]);
    }
    for (var i = 0u; i < 4u; i++) {
        if (q + i < total) {
            let idx = (q + i) * c4n + c / 4u;
            var v = rows[i] + bias;
            if ((p.flags & 1u) != 0u) {
                v += res[idx];
            }
            if (accumulate) {
                v += y[idx];
            }
            y[idx] = v;
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wg.x * 32u;
    let q = ((wg.z * nwg.y + wg.y) * 64u + lid) * 8u;
    if (q >= p.n * p.oh * p.ow) {
        return;
    }
    let cin4 = p.cin / 4u;
    var a00 = mat4x4<f32>(); var a01 = mat4x4<f32>(); var a02 = mat4x4<f32>(); var a03 = mat4x4<f32>();
    var a04 = mat4x4<f32>(); var a05 = mat4x4<f32>(); var a06 = mat4x4<f32>(); var a07 = mat4x4<f32>();
    var a10 = mat4x4<f32>(); var a11 = mat4x4<f32>(); var a12 = mat4x4<f32>(); var a13 = mat4x4<f32>();
    var a14 = mat4x4<f32>(); var a15 = mat4x4<f32>(); var a16 = mat4x4<f32>(); var a17 = mat4x4<f32>();
    for (var ky = 0u; ky < p.ksize; ky++) {
        for (var kx = 0u; kx < p.ksize; kx++) {
            let tap4 = (ky * p.ksize + kx) * (p.wcin / 4u) + p.ci0 / 4u;
            // A loop, not eight calls: shader compilers inline every call, and the code size of this loop nest
            // decides how long SwiftShader takes to compile it.
            var b: array<i32, 8>;
            for (var i = 0u; i < 8u; i++) {
                b[i] = tap_base(q + i, ky, kx);
            }
            for (var c4 = 0u; c4 < cin4; c4++) {
                let x0 = x_rows(b[0], b[1], b[2], b[3], c4);
                let x1 = x_rows(b[4], b[5], b[6], b[7], c4);
                let k4 = tap4 + c4;
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
        }
    }
    // A loop over the blocks, not 16 inlined copies of the store (as the loop over taps above: unrolled, the stores
    // made each variant take 3-4x as long to create on SwiftShader).
    var blocks = array<mat4x4<f32>, 16>(a00, a01, a02, a03, a04, a05, a06, a07, a10, a11, a12, a13, a14, a15, a16, a17);
    for (var i = 0u; i < 16u; i++) {
        store_block(q + (i / 8u) * 4u, c + (i % 8u) * 4u, blocks[i]);
    }
}
