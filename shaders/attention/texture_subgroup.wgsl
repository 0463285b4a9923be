// texture.wgsl with subgroups of at least 8 invocations: 8 keys per step, lane l of a subgroup fetching the texels of
// key s + l and `bcast4` (common/bcast8.wgsl) handing them to every lane, so per 8 keys an invocation loads 2 HD / 4
// texels instead of 8 HD / 4. Broadcasts need every lane active, so every invocation runs the key loop (queries past
// T are clamped, then not stored); a subgroup whose queries are all past T returns at once.

const KEYS: u32 = 8u;

// This lane's key row.
alias KeyRows = u32;

// One head-dim column's texels of the step's keys (or values): column j of m0 is key s + j, of m1 key s + 4 + j.
struct Keys {
    m0: mat4x4<f32>,
    m1: mat4x4<f32>,
}

// A query's scores (or weights) of the step's keys: s0 for keys s .. s + 3, s1 for s + 4 .. s + 7.
struct Scores {
    s0: vec4<f32>,
    s1: vec4<f32>,
}

struct Pair {
    a: Scores,
    b: Scores,
}

fn key_rows(s: u32, row0: u32, last: u32, lane: u32) -> KeyRows {
    return row0 + min(s + lane, last);
}

fn texels(col: u32, rows: KeyRows) -> Keys {
    let t = load_qkvt(vec2<u32>(col, rows));
    return Keys(bcast4(t, 0u), bcast4(t, 1u));
}

fn add_scores(sc: Scores, q: vec4<f32>, k: Keys) -> Scores {
    return Scores(sc.s0 + q * k.m0, sc.s1 + q * k.m1);
}

fn valid(s: u32) -> array<vec4<bool>, 2> {
    let t = vec4<u32>(p.tokens);
    let lo = vec4<u32>(s) + vec4<u32>(0u, 1u, 2u, 3u);
    return array<vec4<bool>, 2>(lo < t, lo + 4u < t);
}

fn mask(sc: Scores, s: u32) -> Scores {
    let v = valid(s);
    return Scores(select(vec4<f32>(-3.0e38), sc.s0, v[0]), select(vec4<f32>(-3.0e38), sc.s1, v[1]));
}

fn scores_max(sc: Scores) -> f32 {
    let m = max(sc.s0, sc.s1);
    return max(max(m.x, m.y), max(m.z, m.w));
}

fn weights(sc: Scores, nm: f32, s: u32) -> Scores {
    let v = valid(s);
    return Scores(select(vec4<f32>(0.0), exp(sc.s0 - nm), v[0]), select(vec4<f32>(0.0), exp(sc.s1 - nm), v[1]));
}

fn weights_sum(w: Scores) -> f32 {
    return dot(w.s0 + w.s1, vec4<f32>(1.0));
}

// o plus the values k weighted by w.
fn add_weighted(o: vec4<f32>, k: Keys, w: Scores) -> vec4<f32> {
    return o + k.m0 * w.s0 + k.m1 * w.s1;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let t0 = wg.x * 128u + lid;
    if (subgroupAll(t0 >= p.tokens)) {
        return;
    }
    attend(wg, t0, min(lane, 7u));
}
