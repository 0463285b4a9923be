// LayerNorm without affine, fused with adaLN modulate:
//   y[m, :] = (x[m, :] - mean) / sqrt(var + eps) * (1 + mod[s, scale_off:]) + mod[s, shift_off:],  s = m / tokens
// with the biased variance over the row, as torch.nn.LayerNorm computes it. mod is [N, mod_stride] f32 (the output of
// the adaLN linear), so one kernel serves the two norms of every block and the final layer.
//
// Mean, then variance around the mean (two passes, no cancellation). Entry points: layernorm.wgsl's main (GPUs: one
// workgroup per row, x and mod in storage buffers) and layernorm_rows.wgsl's per_row (CPU adapters: one invocation
// per row, reading through layernorm.wgsl's buffer accessors or layernorm_tex.wgsl's staged textures).

struct Params {
    rows: u32,
    d: u32,
    tokens: u32,
    mod_stride: u32,
    shift_off: u32,
    scale_off: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
