// Row softmax in place, in f32: s[r, :] = softmax(scale * s[r, :]). One workgroup of 64 invocations per row: max,
// then sum of exponentials, then the normalised values (three passes over the row).

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;

var<workgroup> red: array<f32, WG>;

fn reduce(lid: u32, v: f32, is_max: bool) -> f32 {
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var m = -3.0e38;
    for (var i = lid; i < p.cols; i += WG) {
        m = max(m, s[base + i] * p.scale);
    }
    m = reduce(lid, m, true);
    var z = 0.0;
    for (var i = lid; i < p.cols; i += WG) {
        z += exp(s[base + i] * p.scale - m);
    }
    z = reduce(lid, z, false);
    let inv = 1.0 / z;
    for (var i = lid; i < p.cols; i += WG) {
        s[base + i] = exp(s[base + i] * p.scale - m) * inv;
    }
}
