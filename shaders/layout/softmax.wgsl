// Row softmax in place, in f32: s[r, :] = softmax(scale * s[r, :]). One workgroup of 64 invocations per row: max,
// then sum of exponentials (both reduced by common/reduce.wgsl), then the normalised values (three passes over the
// row).

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var m = -3.0e38;
    for (var i = lid; i < p.cols; i += WG) {
        m = max(m, s[base + i] * p.scale);
    }
    m = workgroup_max(lid, m);
    var z = 0.0;
    for (var i = lid; i < p.cols; i += WG) {
        z += exp(s[base + i] * p.scale - m);
    }
    z = workgroup_sum(lid, z);
    let inv = 1.0 / z;
    for (var i = lid; i < p.cols; i += WG) {
        s[base + i] = exp(s[base + i] * p.scale - m) * inv;
    }
}
