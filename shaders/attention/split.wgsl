// Multi-head self-attention for GPUs (ops::attention, AttentionKernel::Split), as per_query.wgsl computes it:
//   out[n, t, h*HD + j] = sum_s softmax_s(q_t . k_s / sqrt(HD)) * v_s[j]
// with each query's keys split across G invocations, so that a DiT-sized problem (a few hundred queries per head)
// fills a GPU. Specialised per split by the override constants QW and G (QW * G = 64 invocations). A query and its
// running output are `Head`s (H vec4s as named members, so that no compiler has to keep an indexed array in
// registers), with the helpers of split_head.wgsl written out per head dim by ops::attention.
//
// A workgroup handles QW queries of one (sample, head): workgroup_id = (query block, head, sample), invocation
// lid = query * G + g. Invocation g walks the keys in blocks of G * 4, taking keys 4g .. 4g + 3 of each block straight
// from the qkv buffer (the workgroup's queries all read the same keys, so they come from cache), with its own online
// softmax (running max, sum and output). With G > 1 the partial results of a query are merged through workgroup
// memory: common max, rescaled sums, and the output summed in chunks of G vec4s.

struct Params {
    tokens: u32,
    heads: u32,
    d: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

override QW: u32 = 64u;
override G: u32 = 1u;
override THREADS: u32 = QW * G;
override MERGE_LEN: u32 = QW * G * G;

var<workgroup> red_m: array<f32, THREADS>;
var<workgroup> red_l: array<f32, THREADS>;
var<workgroup> red_o: array<vec4<f32>, MERGE_LEN>;

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let d4 = p.d / 4u;
    let t_count = p.tokens;
    let qi = lid / G;
    let g = lid % G;
    let t = wg.x * QW + qi;
    let row = wg.z * t_count + min(t, t_count - 1u);
    let q = head_scaled(row * 3u * d4 + wg.y * H, p.scale);
    let kv0 = wg.z * t_count * 3u * d4 + d4 + wg.y * H;
    var o = Head();
    var run_max = -3.0e38;
    var run_sum = 0.0;
    for (var s0 = g * 4u; s0 < t_count; s0 += G * 4u) {
        // Keys s0 .. s0 + 3, clamped for loading (those past T get zero weight); each value follows its key by d4.
        let keys = vec4<u32>(s0) + vec4<u32>(0u, 1u, 2u, 3u);
        let kb = kv0 + min(keys, vec4<u32>(t_count - 1u)) * 3u * d4;
        let dots = vec4<f32>(head_dot(q, kb.x), head_dot(q, kb.y), head_dot(q, kb.z), head_dot(q, kb.w));
        let sc = select(vec4<f32>(-3.0e38), dots, keys < vec4<u32>(t_count));
        let tile_max = max(run_max, max(max(sc.x, sc.y), max(sc.z, sc.w)));
        let alpha = exp(run_max - tile_max);
        let pr = exp(sc - tile_max);
        run_sum = run_sum * alpha + pr.x + pr.y + pr.z + pr.w;
        run_max = tile_max;
        o = head_update(o, alpha, pr, kb + d4);
    }
    let obase = row * d4 + wg.y * H;
    if (G == 1u) {
        if (t < t_count) {
            head_store(o, obase, 1.0 / run_sum);
        }
        return;
    }
    red_m[lid] = run_max;
    workgroupBarrier();
    var m_all = red_m[qi * G];
    for (var i = 1u; i < G; i++) {
        m_all = max(m_all, red_m[qi * G + i]);
    }
    let f = exp(run_max - m_all);
    red_l[lid] = run_sum * f;
    workgroupBarrier();
    var l_all = 0.0;
    for (var i = 0u; i < G; i++) {
        l_all += red_l[qi * G + i];
    }
    let inv = 1.0 / l_all;
    // The output in chunks of G vec4s: each invocation hands over its part of a chunk, then sums one vec4 of it.
    var parts = head_array(o);
    for (var c0 = 0u; c0 < H; c0 += G) {
        for (var i = 0u; i < G && c0 + i < H; i++) {
            red_o[lid * G + i] = parts[c0 + i] * f;
        }
        workgroupBarrier();
        if (c0 + g < H && t < t_count) {
            var sum = vec4<f32>(0.0);
            for (var i = 0u; i < G; i++) {
                sum += red_o[(qi * G + i) * G + g];
            }
            out[obase + c0 + g] = sum * inv;
        }
        workgroupBarrier();
    }
}
