// Conv weights in a storage buffer: fp16 (through the W4 prelude) [Cout, KH*KW*Cin], rows in (ky, kx, ci) order.
// Uses the including kernel's `p` (conv.wgsl) for the row length.
@group(0) @binding(2) var<storage, read> wbuf: array<W4>;

// 4 consecutive weights of row `row` at column group `k4`.
fn w_row4(row: u32, k4: u32) -> vec4<f32> {
    return w4(wbuf[row * (p.ksize * p.ksize * p.wcin / 4u) + k4]);
}
