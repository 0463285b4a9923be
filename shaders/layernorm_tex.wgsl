// LayerNorm + modulate on CPU adapters (see layernorm_params.wgsl), reading through textures: x staged into `xt`
// (rgba32float, width D/4, one row per token) and mod into `mt` (width mod_stride/4, one row per sample), declared by
// texture_decl! as `load_xt` / `load_mt`. One invocation per row, as layernorm.wgsl's per_row: the invocations of a
// workgroup run as SIMD lanes, and a texel fetch serves all lanes at once where storage buffers are read lane by lane.

@compute @workgroup_size(64)
fn per_row_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.y * nwg.x * 64u + gid.x;
    if (row >= p.rows) {
        return;
    }
    let d4 = p.d / 4u;
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < d4; c++) {
        s += load_xt(vec2<u32>(c, row));
    }
    let mean = (s.x + s.y + s.z + s.w) / f32(p.d);
    var q = vec4<f32>(0.0);
    for (var c = 0u; c < d4; c++) {
        let v = load_xt(vec2<u32>(c, row)) - mean;
        q += v * v;
    }
    let rstd = inverseSqrt((q.x + q.y + q.z + q.w) / f32(p.d) + p.eps);
    let sample = row / p.tokens;
    let shift0 = p.shift_off / 4u;
    let scale0 = p.scale_off / 4u;
    let base = row * d4;
    for (var c = 0u; c < d4; c++) {
        let scale = load_mt(vec2<u32>(scale0 + c, sample));
        let shift = load_mt(vec2<u32>(shift0 + c, sample));
        y[base + c] = (load_xt(vec2<u32>(c, row)) - mean) * rstd * (1.0 + scale) + shift;
    }
}
