// Multi-head self-attention with an online softmax, reading queries, keys and values through a texture (CPU adapters):
//   out[n, t, h*HD + j] = sum_s softmax_s(q_t . k_s / sqrt(HD)) * v_s[j]
// qkvt: rgba32float [rows: N*T, width: 3D/4], the qkv activation staged by a buffer-to-texture copy (declared, with
// `load_qkvt`, by texture_decl! in ops::attention); each row laid out (3, heads, HD). out: [N*T, D] f32 buffer.
//
// Each invocation owns two queries of one (sample, head), 64 apart: workgroup_id = (query block of 128, head,
// sample). It keeps the queries and their running outputs in registers and walks all keys in order, KEYS per step,
// rescaling the running sums once per step (the flash-attention recurrence); each key and value texel fetched serves
// both queries. Every invocation of a workgroup reads the same key and value texels at the same time, which CPU
// adapters fetch as vectors; no workgroup memory or barriers.
//
// The entry point and the step's key texels come from texture_plain.wgsl (4 keys per step, each invocation fetching
// their texels) or texture_subgroup.wgsl (8 keys, fetched once per subgroup and broadcast). Queries and outputs are
// `Head`s, H vec4s as named members, with the helpers of texture_head.wgsl written out per head dim by
// ops::attention: neither lavapipe's nor SwiftShader's compiler unrolls loops, and indexed per-invocation arrays
// stayed in memory there.

struct Params {
    tokens: u32,
    heads: u32,
    d: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

// A query's step: its weights of the step's keys and the factor of its earlier terms.
struct Step {
    w: Scores,
    alpha: f32,
}

// Moves a query's running (max, sum) over one step's scores (keys from s on; those past T get zero weight).
fn online(run: ptr<function, vec2<f32>>, sc: Scores, s: u32) -> Step {
    let masked = mask(sc, s);
    let nm = max((*run).x, scores_max(masked));
    let alpha = exp((*run).x - nm);
    let w = weights(masked, nm, s);
    *run = vec2<f32>(nm, (*run).y * alpha + weights_sum(w));
    return Step(w, alpha);
}

// One vec4 of a query's output over a step: rescaled by alpha, plus the step's values weighted.
fn value_step(o: vec4<f32>, k: Keys, st: Step) -> vec4<f32> {
    return add_weighted(o * st.alpha, k, st.w);
}

// Both queries of this invocation: t0 and t0 + 64 of sample wg.z, head wg.y (`lane`: the invocation's lane in its
// subgroup, for the subgroup variant's fetches).
fn attend(wg: vec3<u32>, t0: u32, lane: u32) {
    let d4 = p.d / 4u;
    let last = p.tokens - 1u;
    let row0 = wg.z * p.tokens;
    let qc = wg.y * H;
    let tb = t0 + 64u;
    let qa = head_load(qc, row0 + min(t0, last));
    let qb = head_load(qc, row0 + min(tb, last));
    var o = Heads();
    var run_a = vec2<f32>(-3.0e38, 0.0);
    var run_b = vec2<f32>(-3.0e38, 0.0);
    for (var s = 0u; s < p.tokens; s += KEYS) {
        let rows = key_rows(s, row0, last, lane);
        let sc = head_scores(qa, qb, d4 + qc, rows);
        let a = online(&run_a, sc.a, s);
        let b = online(&run_b, sc.b, s);
        o = head_values(o, 2u * d4 + qc, rows, a, b);
    }
    if (t0 < p.tokens) {
        head_store(o.a, (row0 + t0) * d4 + qc, 1.0 / run_a.y);
    }
    if (tb < p.tokens) {
        head_store(o.b, (row0 + tb) * d4 + qc, 1.0 / run_b.y);
    }
}
