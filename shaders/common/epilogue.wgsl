// Used by the linear kernels (linear.wgsl with ops::linear_wg's tiles, linear_tex.wgsl).
//
// Parameters and fused epilogue of the linear kernels. The including kernel declares the bindings `p`, `aux` and `y`
// this file uses.
//
// EPI (specialisation constant) picks what happens to v = (x W^T + b)[m, 4*col4 .. 4*col4+3] before it is stored:
//   0: y = v
//   1: y = gelu_tanh(v)                                           MLP fc1
//   2: y = silu(v)                                                timestep-embedder MLP
//   3: y += aux[(m / tokens) * aux_stride + aux_off + n] * v      gated residual of adaLN-Zero, in place
//   4: y = v + aux[(m % tokens) * N + n]                          add a per-token table (position embedding)
//   5: y += v                                                     residual add, in place (VAE attention output)

struct Params {
    m: u32,
    n: u32,
    k: u32,
    tokens: u32,
    aux_stride: u32,
    aux_off: u32,
    // First row of this dispatch (the texture kernel splits tall inputs into chunks).
    row0: u32,
    _pad: u32,
}

override EPI: u32 = 0u;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn gelu_tanh(v: vec4<f32>) -> vec4<f32> {
    // tanh saturates to +-1 in f32 beyond |z| = 9; clamping keeps exp-based tanh implementations finite.
    let z = clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), vec4<f32>(-10.0), vec4<f32>(10.0));
    return 0.5 * v * (1.0 + tanh(z));
}

fn silu(v: vec4<f32>) -> vec4<f32> {
    return v / (1.0 + exp(-v));
}

// Applies the epilogue to columns 4*col4..4*col4+3 of (global) row m and stores them.
fn finish(m: u32, col4: u32, v: vec4<f32>) {
    let n4 = p.n / 4u;
    let i = m * n4 + col4;
    if (EPI == 1u) {
        y[i] = gelu_tanh(v);
    } else if (EPI == 2u) {
        y[i] = silu(v);
    } else if (EPI == 3u) {
        let g = aux[((m / p.tokens) * p.aux_stride + p.aux_off) / 4u + col4];
        y[i] = y[i] + g * v;
    } else if (EPI == 4u) {
        y[i] = v + aux[(m % p.tokens) * n4 + col4];
    } else if (EPI == 5u) {
        y[i] = y[i] + v;
    } else {
        y[i] = v;
    }
}
