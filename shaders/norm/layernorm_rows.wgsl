// One invocation per row and no workgroup memory (CPU adapters, where workgroup barriers are costly and the
// invocations of a workgroup run as SIMD lanes, so 64 rows are normalised side by side). x and mod come through
// `x_at(c, row)` and `mod_at(c, sample)` (vec4 column c): from storage buffers (layernorm.wgsl) or from staged
// textures (layernorm_tex.wgsl, where a texel fetch serves all lanes at once and buffers are read lane by lane).

@compute @workgroup_size(64)
fn per_row(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg);
    if (row >= p.rows) {
        return;
    }
    let d4 = p.d / 4u;
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < d4; c++) {
        s += x_at(c, row);
    }
    let mean = (s.x + s.y + s.z + s.w) / f32(p.d);
    var q = vec4<f32>(0.0);
    for (var c = 0u; c < d4; c++) {
        let v = x_at(c, row) - mean;
        q += v * v;
    }
    let rstd = inverseSqrt((q.x + q.y + q.z + q.w) / f32(p.d) + p.eps);
    let sample = row / p.tokens;
    let shift0 = p.shift_off / 4u;
    let scale0 = p.scale_off / 4u;
    let base = row * d4;
    for (var c = 0u; c < d4; c++) {
        y[base + c] = (x_at(c, row) - mean) * rstd * (1.0 + mod_at(scale0 + c, sample)) + mod_at(shift0 + c, sample);
    }
}
