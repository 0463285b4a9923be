// The register-tiled linear kernel multiplying in f16 (devices with `shader-f16` only; the prelude's W4 is then
// vec4<f16>): as linear.wgsl's `main`, 4x4 outputs per thread, but each 4-vector of x is rounded to f16 once as it
// is loaded (`h4`), the weights are used as read, and each step's vec4 x mat4x4 product (4 dot products of 4 terms)
// is computed in f16 and then added to the f32 accumulators. Accumulation over K stays in f32.

@compute @workgroup_size(8, 8)
fn main_f16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col4 = gid.x;
    let n0 = col4 * 4u;
    let m0 = gid.y * 4u;
    if (n0 >= p.n || m0 >= p.m) {
        return;
    }
    let k4 = p.k / 4u;
    // Rows past M are clamped for loading; their results are not stored.
    let last = p.m - 1u;
    let r0 = m0 * k4;
    let r1 = min(m0 + 1u, last) * k4;
    let r2 = min(m0 + 2u, last) * k4;
    let r3 = min(m0 + 3u, last) * k4;
    let c0 = n0 * k4;
    let c1 = c0 + k4;
    let c2 = c1 + k4;
    let c3 = c2 + k4;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let wt = mat4x4<f16>(w[c0 + k], w[c1 + k], w[c2 + k], w[c3 + k]);
        acc0 += vec4<f32>(h4(x[r0 + k]) * wt);
        acc1 += vec4<f32>(h4(x[r1 + k]) * wt);
        acc2 += vec4<f32>(h4(x[r2 + k]) * wt);
        acc3 += vec4<f32>(h4(x[r3 + k]) * wt);
    }
    let bias = w4(b[col4]);
    finish(m0, col4, acc0 + bias);
    if (m0 + 1u < p.m) {
        finish(m0 + 1u, col4, acc1 + bias);
    }
    if (m0 + 2u < p.m) {
        finish(m0 + 2u, col4, acc2 + bias);
    }
    if (m0 + 3u < p.m) {
        finish(m0 + 3u, col4, acc3 + bias);
    }
}
