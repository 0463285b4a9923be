// One sampler step on the GPU, after the DiT forward. One invocation per latent value of the N samples.
//   out: the model output [B, Cout, H, W], B = 2N with guidance ([cond; uncond]) else N; Cout = 2C with learned
//        sigma (eps channels 0..C, variance-interpolation channels C..2C), else C.
//   x:   the model input [B, C, H, W]; its first N samples are the sampler state. The new state is written to both
//        halves, so the next forward needs no copy.
//   noise: [N, C, H, W] this step's Gaussian noise (DDPM); prev: [N, C, H, W] the previous step's x0 prediction.
//
// Guidance (the release's forward_with_cfg): eps = uncond + scale * (cond - uncond) on channels < guided_channels
// (3 in the release, C for the "all channels" rule); other channels and the variance channels stay conditional.
// Then, with x0 = c0 x - c1 eps (no clipping) and the per-step coefficients computed in f64 on the host:
//   kind 0, DDPM (learned range): x' = c2 x0 + c3 x + c6 exp(0.5 logvar) z,
//          logvar = f c5 + (1 - f) c4 with f = (v + 1) / 2 (v from the model; without learned sigma logvar = c4)
//   kind 1, DDIM (eta 0):         eps' = (c0 x - x0) / c1;  x' = c2 x0 + c3 eps'
//   kind 2, DPM-Solver++(2M):     x' = c2 x + c3 x0 + c4 (x0 - prev)
// Flow models (SiT), where the guided output is the velocity v (t = 0 noise, t = 1 data):
//   kind 3, from x:    x' = x + c0 v;     prev = x + c1 v  (Euler: the data estimate; Heun: the corrector's base)
//   kind 4, from prev: x' = prev + c0 v;  prev = x' + c1 v  (Heun's corrector; prev the data estimate, for previews)
//   kind 5, SDE:       x' = c2 x + c0 v + c3 z;  prev = x + c1 v  (Euler-Maruyama, z this step's noise)
// The diffusion kinds then store x0 in `prev` (DPM-Solver's history, and the preview of the current estimate).

struct Params {
    count: u32,
    chw: u32,
    hw: u32,
    channels: u32,
    out_channels: u32,
    guided: u32,
    guided_channels: u32,
    kind: u32,
    scale: f32,
    c0: f32,
    c1: f32,
    c2: f32,
    c3: f32,
    c4: f32,
    c5: f32,
    c6: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> out: array<f32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> prev: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.count) {
        return;
    }
    let n = i / p.chw;
    let ch = (i % p.chw) / p.hw;
    let pix = i % p.hw;
    let cond = n * p.out_channels * p.hw;
    var eps = out[cond + ch * p.hw + pix];
    if (p.guided == 1u && ch < p.guided_channels) {
        let samples = p.count / p.chw;
        let uncond = out[(samples + n) * p.out_channels * p.hw + ch * p.hw + pix];
        eps = uncond + p.scale * (eps - uncond);
    }
    let xt = x[i];
    if (p.kind >= 3u) {
        var base = xt;
        if (p.kind == 4u) {
            base = prev[i];
        } else if (p.kind == 5u) {
            base = p.c2 * xt + p.c3 * noise[i];
        }
        let xf = base + p.c0 * eps;
        if (p.kind != 4u) {
            prev[i] = xt + p.c1 * eps;
        } else {
            prev[i] = xf + p.c1 * eps;
        }
        x[i] = xf;
        if (p.guided == 1u) {
            x[p.count + i] = xf;
        }
        return;
    }
    let x0 = p.c0 * xt - p.c1 * eps;
    var xn: f32;
    if (p.kind == 0u) {
        var logvar = p.c4;
        if (p.out_channels == 2u * p.channels) {
            let f = (out[cond + (p.channels + ch) * p.hw + pix] + 1.0) * 0.5;
            logvar = f * p.c5 + (1.0 - f) * p.c4;
        }
        xn = p.c2 * x0 + p.c3 * xt + p.c6 * exp(0.5 * logvar) * noise[i];
    } else if (p.kind == 1u) {
        let eps2 = (p.c0 * xt - x0) / p.c1;
        xn = p.c2 * x0 + p.c3 * eps2;
    } else {
        xn = p.c2 * xt + p.c3 * x0 + p.c4 * (x0 - prev[i]);
    }
    prev[i] = x0;
    x[i] = xn;
    if (p.guided == 1u) {
        x[p.count + i] = xn;
    }
}
