// f16 tiles for workgroup.wgsl (devices with `shader-f16`, fp16 weights): x is rounded to f16 as it is loaded
// (clamped to the f16 range, `h4`) and w is kept as read, so both tiles in workgroup memory are vec4<f16> (half the
// bytes). Each invocation sums F16_SUMS consecutive products per output in f16 (vec4<f16> multiply-adds, which GPUs
// with packed f16 math issue at twice the f32 rate), then adds that short partial sum to its f32 accumulators, so the
// sum over K stays in f32: the error is the rounding of x and of a few f16 terms.

alias WgEl = vec4<f16>;
alias Sum = f16;

// Products summed in f16 before each add to the f32 accumulators (a divisor of BK).
override F16_SUMS: u32 = 4u;

// The f32 accumulators, member for member as `Blocks`.
struct Acc {
    b00: mat4x4<f32>,
    b01: mat4x4<f32>,
    b10: mat4x4<f32>,
    b11: mat4x4<f32>,
}

fn x_el(v: vec4<f32>) -> WgEl {
    return h4(v);
}

fn w_el(v: W4) -> WgEl {
    return v;
}

fn tile_step(acc: ptr<function, Acc>, tx: u32, ty: u32) {
    for (var k0 = 0u; k0 < BK; k0 += F16_SUMS) {
        var s = Blocks();
        for (var kk = k0; kk < k0 + F16_SUMS; kk++) {
            add_products(&s, kk, tx, ty);
        }
        (*acc).b00 += mat4x4<f32>(s.b00);
        if (TN == 8u) {
            (*acc).b01 += mat4x4<f32>(s.b01);
        }
        if (TM == 8u) {
            (*acc).b10 += mat4x4<f32>(s.b10);
        }
        if (TM == 8u && TN == 8u) {
            (*acc).b11 += mat4x4<f32>(s.b11);
        }
    }
}
