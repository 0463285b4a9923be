// Used by layout, patch, permute_buf/_tex, sampler, groupnorm, layernorm, layernorm_rows, linear, softmax.
//
// Flat indices over a 1D grid of more than 65535 workgroups, which gpu::grid folds into x and y (rows of nwg.x
// workgroups along x, then y).

// Index of this invocation, for workgroups of 64 invocations.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.y * nwg.x * 64u + gid.x;
}

// Index of this workgroup.
fn flat_workgroup(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}
