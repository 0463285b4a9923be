// DiT conditioning embeddings.
//
// `timestep_freqs`: the sinusoidal timestep features, cos first (DiT's TimestepEmbedder):
//   f_i = exp(-ln(max_period) * i / half), i < half;   e[n] = [cos(t_n * f), sin(t_n * f)]
// computed in f32 like the reference. The arguments reach ~1000 rad, so they are range-reduced to [-pi, pi] first:
// WGSL only bounds sin/cos error inside that interval. One thread per output value.
//
// `condition`: c = t_emb + y_emb with y_emb = (1 - alpha) * label_table[a] + alpha * label_table[b] (a class blend; a
// plain class is a = b, alpha = 0, which gives label_table[a] exactly); writes silu(c), the only form the blocks and
// final layer use (adaLN_modulation = Sequential(SiLU, Linear)). Labels are clamped to the table (the host rejects
// bad labels and alphas). One thread per 4 values.

struct Params {
    n: u32,
    dim: u32,
    rows: u32,
    max_period: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<W4>;
@group(0) @binding(3) var<storage, read> temb: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<f32>>;

// sin/cos-safe reduction of `a` to [-pi, pi]: a - k * 2pi with 2pi split in two so that k * C1 is exact.
fn reduce_angle(a: f32) -> f32 {
    let C1 = 6.28125;
    let C2 = 0.0019353071795864769;
    let k = round(a * 0.15915494309189535);
    return (a - k * C1) - k * C2;
}

fn freq(i: u32) -> f32 {
    let half = p.dim / 2u;
    return exp(-log(p.max_period) * f32(i) / f32(half));
}

// src = timesteps [n]; dst = features [n, dim], written 4 at a time.
@compute @workgroup_size(64)
fn timestep_freqs(@builtin(global_invocation_id) gid: vec3<u32>) {
    let dim4 = p.dim / 4u;
    let idx = gid.x;
    if (idx >= p.n * dim4) {
        return;
    }
    let row = idx / dim4;
    let j0 = (idx % dim4) * 4u;
    let half = p.dim / 2u;
    let t = src[row];
    var v = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        let j = j0 + e;
        if (j < half) {
            v[e] = cos(reduce_angle(t * freq(j)));
        } else {
            v[e] = sin(reduce_angle(t * freq(j - half)));
        }
    }
    dst[idx] = v;
}

// src = label rows [n, 3]: a, b (u32 bit patterns) and alpha (f32); table = [rows, dim] fp16; temb = [n, dim];
// dst = silu(c) [n, dim].
@compute @workgroup_size(64)
fn condition(@builtin(global_invocation_id) gid: vec3<u32>) {
    let dim4 = p.dim / 4u;
    let idx = gid.x;
    if (idx >= p.n * dim4) {
        return;
    }
    let row = idx / dim4;
    let c4 = idx % dim4;
    let a = min(bitcast<u32>(src[3u * row]), p.rows - 1u);
    let b = min(bitcast<u32>(src[3u * row + 1u]), p.rows - 1u);
    let alpha = src[3u * row + 2u];
    let y = (1.0 - alpha) * w4(table[a * dim4 + c4]) + alpha * w4(table[b * dim4 + c4]);
    let c = temb[idx] + y;
    dst[idx] = c / (1.0 + exp(-c));
}
