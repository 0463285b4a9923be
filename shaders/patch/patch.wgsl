// Patch embedding input and output reshapes of DiT, one thread per element.
//
// `patchify`: latent [N, C, H, W] -> patches [N*T, C*P*P], T = G*G tokens in row-major order over the patch grid,
// each patch flattened in (channel, ky, kx) order: the conv with kernel = stride = P is then a linear map.
// `unpatchify`: tokens [N*T, P*P*C] -> image [N, C, H, W], out[ch, r*P+py, c*P+px] = y[r*G + c, (py*P + px)*C + ch].
// Indices are flat over the output, folded over x and y of the grid when it passes 65535 workgroups (common/index).

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    p: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn patchify(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let total = prm.n * prm.c * prm.h * prm.w;
    if (idx >= total) {
        return;
    }
    let pp = prm.p * prm.p;
    let row_len = prm.c * pp;
    let g = prm.w / prm.p;
    let t_count = (prm.h / prm.p) * g;
    let token = idx / row_len;
    let within = idx % row_len;
    let n = token / t_count;
    let tt = token % t_count;
    let r = tt / g;
    let cc = tt % g;
    let ch = within / pp;
    let ky = (within % pp) / prm.p;
    let kx = within % prm.p;
    dst[idx] = src[((n * prm.c + ch) * prm.h + r * prm.p + ky) * prm.w + cc * prm.p + kx];
}

@compute @workgroup_size(64)
fn unpatchify(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let total = prm.n * prm.c * prm.h * prm.w;
    if (idx >= total) {
        return;
    }
    let wx = idx % prm.w;
    let hy = (idx / prm.w) % prm.h;
    let ch = (idx / (prm.w * prm.h)) % prm.c;
    let n = idx / (prm.w * prm.h * prm.c);
    let g = prm.w / prm.p;
    let t_count = (prm.h / prm.p) * g;
    let token = n * t_count + (hy / prm.p) * g + wx / prm.p;
    let col = ((hy % prm.p) * prm.p + wx % prm.p) * prm.c + ch;
    dst[idx] = src[token * prm.p * prm.p * prm.c + col];
}
