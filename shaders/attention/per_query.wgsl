// Multi-head self-attention fused with an online softmax; no T x T matrix is ever stored:
//   out[n, t, h*HD + j] = sum_s softmax_s(q_t . k_s / sqrt(HD)) * v_s[j]
// qkv: [N*T, 3D] f32, each row laid out (3, heads, HD) as DiT's qkv linear writes it: q at h*HD, k at D + h*HD,
// v at 2D + h*HD. out: [N*T, D] f32 with the heads concatenated in order. No mask.
//
// A workgroup handles BQ = 64 queries of one (sample, head): workgroup_id = (query block, head, sample). Each thread
// owns one query and keeps it and its running output in registers. Keys and values stream through workgroup memory
// in tiles of BK; per tile a thread computes its BK scores, then rescales its running sum once (flash-attention).
// HD (specialisation constant) is the head dim: a multiple of 4, at most 4 * MAX_HD4.

struct Params {
    tokens: u32,
    heads: u32,
    d: u32,
    scale: f32,
}

override HD: u32 = 64u;

const BQ: u32 = 64u;
const BK: u32 = 16u;
const MAX_HD4: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> ks: array<vec4<f32>, BK * MAX_HD4>;
var<workgroup> vs: array<vec4<f32>, BK * MAX_HD4>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hd4 = HD / 4u;
    let d4 = p.d / 4u;
    let t_count = p.tokens;
    let head = wg.y;
    let sample = wg.z;
    let t = wg.x * BQ + lid;
    let row = sample * t_count + min(t, t_count - 1u);

    var q: array<vec4<f32>, MAX_HD4>;
    var o: array<vec4<f32>, MAX_HD4>;
    let qbase = row * 3u * d4 + head * hd4;
    for (var c = 0u; c < hd4; c++) {
        q[c] = qkv[qbase + c] * p.scale;
        o[c] = vec4<f32>(0.0);
    }
    var run_max = -3.0e38;
    var run_sum = 0.0;
    var sc: array<f32, BK>;

    for (var s0 = 0u; s0 < t_count; s0 += BK) {
        // Cooperative load of keys/values s0..s0+BK-1 (clamped; keys past T are not used below).
        for (var i = lid; i < BK * hd4; i += BQ) {
            let j = i / hd4;
            let c = i % hd4;
            let s = min(s0 + j, t_count - 1u);
            let kbase = (sample * t_count + s) * 3u * d4 + d4 + head * hd4;
            ks[j * MAX_HD4 + c] = qkv[kbase + c];
            vs[j * MAX_HD4 + c] = qkv[kbase + d4 + c];
        }
        workgroupBarrier();

        let nk = min(BK, t_count - s0);
        var tile_max = run_max;
        for (var j = 0u; j < nk; j++) {
            var acc = 0.0;
            for (var c = 0u; c < hd4; c++) {
                acc += dot(q[c], ks[j * MAX_HD4 + c]);
            }
            sc[j] = acc;
            tile_max = max(tile_max, acc);
        }
        let alpha = exp(run_max - tile_max);
        run_sum *= alpha;
        for (var c = 0u; c < hd4; c++) {
            o[c] *= alpha;
        }
        for (var j = 0u; j < nk; j++) {
            let pj = exp(sc[j] - tile_max);
            run_sum += pj;
            for (var c = 0u; c < hd4; c++) {
                o[c] += pj * vs[j * MAX_HD4 + c];
            }
        }
        run_max = tile_max;
        workgroupBarrier();
    }

    if (t < t_count) {
        let obase = row * d4 + head * hd4;
        let inv = 1.0 / run_sum;
        for (var c = 0u; c < hd4; c++) {
            out[obase + c] = o[c] * inv;
        }
    }
}
