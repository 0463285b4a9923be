// Used by the texture kernels' subgroup variants (linear_tex_sg.wgsl, ops::attention_tex with subgroups).
//
// Subgroup broadcast for subgroups of at least 8 invocations: lanes 0..7 each load one texel (a column of weights, or
// a key), and every lane needs all 8.

// The texels v of lanes 4h .. 4h + 3 as the columns of a matrix, in every lane.
fn bcast4(v: vec4<f32>, h: u32) -> mat4x4<f32> {
    if (h == 0u) {
        return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                           subgroupBroadcast(v, 3u));
    }
    return mat4x4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u),
                       subgroupBroadcast(v, 7u));
}
