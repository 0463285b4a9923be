// Multi-head self-attention with an online softmax, reading keys and values through a texture (CPU adapters):
//   out[n, t, h*HD + j] = sum_s softmax_s(q_t . k_s / sqrt(HD)) * v_s[j]
// qkvt: rgba32float [rows: N*T, width: 3D/4], the qkv activation staged by a buffer-to-texture copy; each row laid
// out (3, heads, HD). out: [N*T, D] f32 buffer.
//
// Each invocation owns one query of one (sample, head): workgroup_id = (query block of 64, head, sample). It keeps
// the query and its running output in registers and walks all keys in order, rescaling its running sum once per
// group of 4 keys (the flash-attention recurrence). Every invocation of a workgroup reads the same key and value
// texels at the same time, which CPU adapters fetch as vectors; no workgroup memory or barriers.
// HD (specialisation constant) is the head dim: a multiple of 4, at most 4 * MAX_HD4.

struct Params {
    tokens: u32,
    heads: u32,
    d: u32,
    scale: f32,
}

override HD: u32 = 64u;

const MAX_HD4: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var qkvt: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hd4 = HD / 4u;
    let d4 = p.d / 4u;
    let t = wg.x * 64u + lid;
    if (t >= p.tokens) {
        return;
    }
    let row0 = wg.z * p.tokens;
    let qc = wg.y * hd4;
    let kc = d4 + qc;
    let vc = 2u * d4 + qc;
    var q: array<vec4<f32>, MAX_HD4>;
    var o: array<vec4<f32>, MAX_HD4>;
    for (var c = 0u; c < hd4; c++) {
        q[c] = textureLoad(qkvt, vec2<u32>(qc + c, row0 + t), 0) * p.scale;
        o[c] = vec4<f32>(0.0);
    }
    var run_max = -3.0e38;
    var run_sum = 0.0;
    for (var s = 0u; s < p.tokens; s += 4u) {
        // Scores of keys s..s+3 (keys past T get -inf weight).
        var sc = vec4<f32>(0.0);
        for (var c = 0u; c < hd4; c++) {
            let r = row0 + s;
            sc += vec4<f32>(
                dot(q[c], textureLoad(qkvt, vec2<u32>(kc + c, r), 0)),
                dot(q[c], textureLoad(qkvt, vec2<u32>(kc + c, min(r + 1u, row0 + p.tokens - 1u)), 0)),
                dot(q[c], textureLoad(qkvt, vec2<u32>(kc + c, min(r + 2u, row0 + p.tokens - 1u)), 0)),
                dot(q[c], textureLoad(qkvt, vec2<u32>(kc + c, min(r + 3u, row0 + p.tokens - 1u)), 0)),
            );
        }
        let valid = vec4<bool>(s < p.tokens, s + 1u < p.tokens, s + 2u < p.tokens, s + 3u < p.tokens);
        sc = select(vec4<f32>(-3.0e38), sc, valid);
        let new_max = max(run_max, max(max(sc.x, sc.y), max(sc.z, sc.w)));
        let alpha = exp(run_max - new_max);
        let pw = select(vec4<f32>(0.0), exp(sc - new_max), valid);
        run_sum = run_sum * alpha + pw.x + pw.y + pw.z + pw.w;
        run_max = new_max;
        for (var c = 0u; c < hd4; c++) {
            let r = row0 + s;
            o[c] = o[c] * alpha
                + pw.x * textureLoad(qkvt, vec2<u32>(vc + c, r), 0)
                + pw.y * textureLoad(qkvt, vec2<u32>(vc + c, min(r + 1u, row0 + p.tokens - 1u)), 0)
                + pw.z * textureLoad(qkvt, vec2<u32>(vc + c, min(r + 2u, row0 + p.tokens - 1u)), 0)
                + pw.w * textureLoad(qkvt, vec2<u32>(vc + c, min(r + 3u, row0 + p.tokens - 1u)), 0);
        }
    }
    let inv = 1.0 / run_sum;
    let obase = (row0 + t) * d4 + qc;
    for (var c = 0u; c < hd4; c++) {
        out[obase + c] = o[c] * inv;
    }
}
