// Reorders fp16 conv weights once at load: [Cout, Cin, KH, KW] (PyTorch) -> [Cout_pad, KH, KW, Cin] so that the
// implicit-GEMM conv reads 4 input channels of one tap at a time. Rows past Cout (padding to a multiple of 4) are
// zero. The destination is a buffer (permute_buf.wgsl: one u32 = two halves per invocation) or an rgba16float
// storage texture (permute_tex.wgsl: one texel = four values per invocation).

struct Params {
    cout: u32,
    cout_pad: u32,
    cin: u32,
    taps: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;

fn half_at(i: u32) -> f32 {
    let v = unpack2x16float(src[i / 2u]);
    return select(v.x, v.y, (i & 1u) == 1u);
}

// Value of output element o (flat over [Cout_pad, taps * Cin]).
fn value(o: u32) -> f32 {
    let ci = o % p.cin;
    let tap = (o / p.cin) % p.taps;
    let co = o / (p.cin * p.taps);
    if (co >= p.cout) {
        return 0.0;
    }
    return half_at((co * p.cin + ci) * p.taps + tap);
}
