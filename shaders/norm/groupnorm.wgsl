// GroupNorm over NHWC activations (torch.nn.GroupNorm: biased variance over each group's channels and all pixels,
// then a per-channel affine), optionally followed by SiLU (p.silu = 1), as in the SD-VAE decoder's norms.
//   x, y: [N, HW, C] f32; gamma, beta: fp16, the affine of channel c at c0 + c (x may be a channel part of a larger
//   activation, holding whole groups); stats: [N, G, 2] f32 (mean, 1/sqrt(var + eps)).
// `stats`: one workgroup of 256 invocations per (sample, group), two passes (mean, then variance around it), each
// summed by common/reduce.wgsl.
// `apply`: one invocation per 4 channels of one pixel. Needs (C / G) % 4 == 0.

struct Params {
    n: u32,
    hw: u32,
    c: u32,
    groups: u32,
    eps: f32,
    c0: u32,
    silu: u32,
    _pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<W4>;
@group(0) @binding(3) var<storage, read> beta: array<W4>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(256)
fn stats_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x;
    let n = wg.y;
    let c4n = p.c / 4u;
    let cpg4 = p.c / p.groups / 4u;
    let count = f32(p.hw * cpg4 * 4u);
    let items = p.hw * cpg4;
    var s = 0.0;
    for (var i = lid; i < items; i += WG) {
        let v = x[(n * p.hw + i / cpg4) * c4n + g * cpg4 + i % cpg4];
        s += v.x + v.y + v.z + v.w;
    }
    let mean = workgroup_sum(lid, s) / count;
    var q = 0.0;
    for (var i = lid; i < items; i += WG) {
        let v = x[(n * p.hw + i / cpg4) * c4n + g * cpg4 + i % cpg4] - mean;
        q += dot(v, v);
    }
    let var_ = workgroup_sum(lid, q) / count;
    if (lid == 0u) {
        stats[(n * p.groups + g) * 2u] = mean;
        stats[(n * p.groups + g) * 2u + 1u] = inverseSqrt(var_ + p.eps);
    }
}

@compute @workgroup_size(64)
fn apply_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c4n = p.c / 4u;
    let idx = flat_index(gid, nwg);
    if (idx >= p.n * p.hw * c4n) {
        return;
    }
    let c4 = idx % c4n;
    let n = idx / (p.hw * c4n);
    let g = (c4 * 4u) / (p.c / p.groups);
    let mean = stats[(n * p.groups + g) * 2u];
    let rstd = stats[(n * p.groups + g) * 2u + 1u];
    var v = (x[idx] - mean) * rstd * w4(gamma[p.c0 / 4u + c4]) + w4(beta[p.c0 / 4u + c4]);
    if (p.silu == 1u) {
        v = v / (1.0 + exp(-v));
    }
    y[idx] = v;
}
