// RMSNorm over each attention head's q and k, in place in the fused qkv activation (DiT with `qk_norm`, as
// Decoupled MeanFlow's 512 px model: timm-style RMSNorm with a learned scale, eps 1e-6):
//   q_h <- q_h * inverseSqrt(mean(q_h^2) + eps) * q_scale,   k_h likewise with k_scale,
// where q_h = qkv[row, h*hd .. (h+1)*hd] and k_h the same columns shifted by D (the release's reshape(B, L, 3, H, hd)).
// One invocation per (row, head, q or k); a head is at most 128 values, read 4 at a time.

struct Params {
    rows: u32,
    dim: u32,
    head_dim: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q_scale: array<W4>;
@group(0) @binding(2) var<storage, read> k_scale: array<W4>;
@group(0) @binding(3) var<storage, read_write> qkv: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let heads = p.dim / p.head_dim;
    if (i >= p.rows * heads * 2u) {
        return;
    }
    let is_k = i % 2u;
    let h = (i / 2u) % heads;
    let row = i / (2u * heads);
    let hd4 = p.head_dim / 4u;
    let base = (row * 3u * p.dim + is_k * p.dim + h * p.head_dim) / 4u;
    var ss = 0.0;
    for (var j = 0u; j < hd4; j++) {
        let v = qkv[base + j];
        ss += dot(v, v);
    }
    let r = inverseSqrt(ss / f32(p.head_dim) + p.eps);
    for (var j = 0u; j < hd4; j++) {
        var s = w4(q_scale[j]);
        if (is_k == 1u) {
            s = w4(k_scale[j]);
        }
        qkv[base + j] = qkv[base + j] * r * s;
    }
}
