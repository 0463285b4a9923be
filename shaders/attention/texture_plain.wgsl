// texture.wgsl without subgroups: 4 keys per step, every invocation fetching their texels (the 4 rows of one
// head-dim column as the columns of a matrix).

const KEYS: u32 = 4u;

alias KeyRows = vec4<u32>;

// One head-dim column's texels of the step's keys (or values): column j is key s + j.
struct Keys {
    m0: mat4x4<f32>,
}

// A query's scores (or weights) of the step's keys.
struct Scores {
    s0: vec4<f32>,
}

struct Pair {
    a: Scores,
    b: Scores,
}

fn key_rows(s: u32, row0: u32, last: u32, lane: u32) -> KeyRows {
    return row0 + min(vec4<u32>(s) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
}

fn texels(col: u32, rows: KeyRows) -> Keys {
    return Keys(mat4x4<f32>(load_qkvt(vec2<u32>(col, rows.x)), load_qkvt(vec2<u32>(col, rows.y)),
                            load_qkvt(vec2<u32>(col, rows.z)), load_qkvt(vec2<u32>(col, rows.w))));
}

fn add_scores(sc: Scores, q: vec4<f32>, k: Keys) -> Scores {
    return Scores(sc.s0 + q * k.m0);
}

fn mask(sc: Scores, s: u32) -> Scores {
    return Scores(select(vec4<f32>(-3.0e38), sc.s0, vec4<u32>(s) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.tokens)));
}

fn scores_max(sc: Scores) -> f32 {
    return max(max(sc.s0.x, sc.s0.y), max(sc.s0.z, sc.s0.w));
}

fn weights(sc: Scores, nm: f32, s: u32) -> Scores {
    let valid = vec4<u32>(s) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.tokens);
    return Scores(select(vec4<f32>(0.0), exp(sc.s0 - nm), valid));
}

fn weights_sum(w: Scores) -> f32 {
    return dot(w.s0, vec4<f32>(1.0));
}

// o plus the values k weighted by w.
fn add_weighted(o: vec4<f32>, k: Keys, w: Scores) -> vec4<f32> {
    return o + k.m0 * w.s0;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t0 = wg.x * 128u + lid;
    if (t0 >= p.tokens) {
        return;
    }
    attend(wg, t0, 0u);
}
