// LayerNorm reading x and mod from storage buffers (see layernorm_params.wgsl). main (GPUs): one workgroup of 64
// threads per row (flat workgroup index folded over x and y); each thread walks the row in vec4 steps, and the sums
// are reduced in workgroup memory (common/reduce.wgsl). x_at / mod_at serve layernorm_rows.wgsl's per_row on CPU
// adapters.

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> modv: array<vec4<f32>>;

const WG: u32 = 64u;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_workgroup(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let d4 = p.d / 4u;
    let base = row * d4;

    var s = 0.0;
    for (var c = lid; c < d4; c += WG) {
        let v = x[base + c];
        s += v.x + v.y + v.z + v.w;
    }
    let mean = workgroup_sum(lid, s) / f32(p.d);

    var q = 0.0;
    for (var c = lid; c < d4; c += WG) {
        let v = x[base + c] - mean;
        q += dot(v, v);
    }
    let rstd = inverseSqrt(workgroup_sum(lid, q) / f32(p.d) + p.eps);

    let mrow = (row / p.tokens) * (p.mod_stride / 4u);
    let shift0 = mrow + p.shift_off / 4u;
    let scale0 = mrow + p.scale_off / 4u;
    for (var c = lid; c < d4; c += WG) {
        y[base + c] = (x[base + c] - mean) * rstd * (1.0 + modv[scale0 + c]) + modv[shift0 + c];
    }
}

// Accessors for layernorm_rows.wgsl's per_row (CPU adapters whose rows cannot be staged into textures).
fn x_at(c: u32, row: u32) -> vec4<f32> {
    return x[row * (p.d / 4u) + c];
}

fn mod_at(c: u32, sample: u32) -> vec4<f32> {
    return modv[sample * (p.mod_stride / 4u) + c];
}
