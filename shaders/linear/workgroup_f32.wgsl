// f32 tiles for workgroup.wgsl: x as read, w widened from fp16 (or the f32 second operand of a matmul); each depth's
// products are added straight to the f32 accumulators.

alias WgEl = vec4<f32>;
alias Sum = f32;
alias Acc = Blocks;

fn x_el(v: vec4<f32>) -> WgEl {
    return v;
}

fn w_el(v: W4) -> WgEl {
    return w4(v);
}

fn tile_step(acc: ptr<function, Acc>, tx: u32, ty: u32) {
    for (var kk = 0u; kk < BK; kk++) {
        add_products(acc, kk, tx, ty);
    }
}
