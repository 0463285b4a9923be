// The texture linear kernel with subgroup broadcasts (see linear_tex.wgsl), for subgroups of at least 8 invocations.
// Each invocation computes 4 rows x 64 columns as 16 blocks of 4 x 4 (mat4x4 accumulators). All invocations of a
// workgroup share the 64 columns, so instead of each loading all 64 weight texels per step of 4 along K, lane l of a
// subgroup loads those of columns l, 8 + l, ..., 56 + l and subgroupBroadcast hands each to every lane: per step an
// invocation loads 4 texels of x and 8 of w for 1024 multiply-adds. A subgroup whose rows are all past M returns at
// once (small M: the adaLN projections have one row per sample); otherwise every invocation runs the K loop to the
// end (rows past M are clamped, then not stored), so the whole subgroup takes part in every broadcast.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let c = wg.x * 64u;
    let r = (wg.y * 64u + lid) * 4u;
    if (subgroupAll(r >= p.m)) {
        return;
    }
    let l = c + min(lane, 7u);
    var a0 = mat4x4<f32>(); var a1 = mat4x4<f32>(); var a2 = mat4x4<f32>(); var a3 = mat4x4<f32>();
    var a4 = mat4x4<f32>(); var a5 = mat4x4<f32>(); var a6 = mat4x4<f32>(); var a7 = mat4x4<f32>();
    var a8 = mat4x4<f32>(); var a9 = mat4x4<f32>(); var a10 = mat4x4<f32>(); var a11 = mat4x4<f32>();
    var a12 = mat4x4<f32>(); var a13 = mat4x4<f32>(); var a14 = mat4x4<f32>(); var a15 = mat4x4<f32>();
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        let x = x_rows(k4, r);
        let v0 = w_row(k4, l); let v1 = w_row(k4, l + 8u); let v2 = w_row(k4, l + 16u); let v3 = w_row(k4, l + 24u);
        let v4 = w_row(k4, l + 32u); let v5 = w_row(k4, l + 40u); let v6 = w_row(k4, l + 48u);
        let v7 = w_row(k4, l + 56u);
        a0 += x * bcast4(v0, 0u); a1 += x * bcast4(v0, 1u); a2 += x * bcast4(v1, 0u); a3 += x * bcast4(v1, 1u);
        a4 += x * bcast4(v2, 0u); a5 += x * bcast4(v2, 1u); a6 += x * bcast4(v3, 0u); a7 += x * bcast4(v3, 1u);
        a8 += x * bcast4(v4, 0u); a9 += x * bcast4(v4, 1u); a10 += x * bcast4(v5, 0u);
        a11 += x * bcast4(v5, 1u); a12 += x * bcast4(v6, 0u); a13 += x * bcast4(v6, 1u);
        a14 += x * bcast4(v7, 0u); a15 += x * bcast4(v7, 1u);
    }
    if (r >= p.m) {
        return;
    }
    store_block(r, c, a0); store_block(r, c + 4u, a1); store_block(r, c + 8u, a2); store_block(r, c + 12u, a3);
    store_block(r, c + 16u, a4); store_block(r, c + 20u, a5); store_block(r, c + 24u, a6);
    store_block(r, c + 28u, a7); store_block(r, c + 32u, a8); store_block(r, c + 36u, a9);
    store_block(r, c + 40u, a10); store_block(r, c + 44u, a11); store_block(r, c + 48u, a12);
    store_block(r, c + 52u, a13); store_block(r, c + 56u, a14); store_block(r, c + 60u, a15);
}
