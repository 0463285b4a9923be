// The head-dim helpers of texture.wgsl. ops::attention writes this file out per head dim HD: it sets H = HD / 4 and
// repeats each line that holds the marker (a hash sign) for every vec4 of a head, the marker replaced by its index.

struct Head {
    c#: vec4<f32>,
}

// The outputs of this invocation's two queries.
struct Heads {
    a: Head,
    b: Head,
}

// The query of texture row `row` from texel column `col`, times the scale.
fn head_load(col: u32, row: u32) -> Head {
    var q: Head;
    q.c# = load_qkvt(vec2<u32>(col + #u, row)) * p.scale;
    return q;
}

// Both queries' scores of the step's keys, whose head starts at texel column `kc`: each key texel serves both.
fn head_scores(qa: Head, qb: Head, kc: u32, rows: KeyRows) -> Pair {
    var sc = Pair();
    { let k = texels(kc + #u, rows); sc.a = add_scores(sc.a, qa.c#, k); sc.b = add_scores(sc.b, qb.c#, k); }
    return sc;
}

// Both outputs rescaled by their steps' alpha plus the step's values (head from texel column `vc`) by their weights.
fn head_values(o: Heads, vc: u32, rows: KeyRows, a: Step, b: Step) -> Heads {
    var r: Heads;
    { let k = texels(vc + #u, rows); r.a.c# = value_step(o.a.c#, k, a); r.b.c# = value_step(o.b.c#, k, b); }
    return r;
}

fn head_store(o: Head, base: u32, inv: f32) {
    out[base + #u] = o.c# * inv;
}
