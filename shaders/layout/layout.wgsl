// Layout changes, one invocation per output value (flat index folded over x and y of the grid).
// `nchw_to_nhwc`: latent [N, C, H, W] -> [N, H, W, C], times `scale` (the VAE takes latent / 0.18215).
// `transpose`: [rows, cols] -> [cols, rows] (the attention's V for the P V product).

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn nchw_to_nhwc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n * p.c * p.h * p.w) {
        return;
    }
    let c = i % p.c;
    let x = (i / p.c) % p.w;
    let y = (i / (p.c * p.w)) % p.h;
    let n = i / (p.c * p.w * p.h);
    dst[i] = src[((n * p.c + c) * p.h + y) * p.w + x] * p.scale;
}

// Uses h = rows, w = cols.
@compute @workgroup_size(64)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.h * p.w) {
        return;
    }
    let r = i % p.h;
    let c = i / p.h;
    dst[i] = src[r * p.w + c];
}
