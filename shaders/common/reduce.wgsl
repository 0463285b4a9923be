// Used by layernorm (main), groupnorm (stats_main) and softmax.
//
// Tree reductions in workgroup memory. The including kernel declares `const WG: u32`, its workgroup size (a power of
// two). Every invocation of the workgroup calls them together, and each gets the result.

var<workgroup> red: array<f32, WG>;

fn workgroup_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            if (is_max) {
                red[lid] = max(red[lid], red[lid + k]);
            } else {
                red[lid] += red[lid + k];
            }
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// Sum of `v` over the workgroup.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    return workgroup_reduce(lid, v, false);
}

// Maximum of `v` over the workgroup.
fn workgroup_max(lid: u32, v: f32) -> f32 {
    return workgroup_reduce(lid, v, true);
}
