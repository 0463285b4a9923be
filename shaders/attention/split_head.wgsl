// The head-dim helpers of split.wgsl. ops::attention writes this file out per head dim HD: it sets H = HD / 4 and
// repeats each line that holds the marker (a hash sign) for every vec4 of a head, the marker replaced by its index.

struct Head {
    c#: vec4<f32>,
}

// The query at vec4 `base` of qkv, times `scale`.
fn head_scaled(base: u32, scale: f32) -> Head {
    var q: Head;
    q.c# = qkv[base + #u] * scale;
    return q;
}

// q . k for the key at vec4 `base` of qkv.
fn head_dot(q: Head, base: u32) -> f32 {
    var s = 0.0;
    s += dot(q.c#, qkv[base + #u]);
    return s;
}

// o * alpha plus the 4 values at vec4s `vb` of qkv, weighted by `pr`.
fn head_update(o: Head, alpha: f32, pr: vec4<f32>, vb: vec4<u32>) -> Head {
    var r: Head;
    r.c# = o.c# * alpha + pr.x * qkv[vb.x + #u] + pr.y * qkv[vb.y + #u] + pr.z * qkv[vb.z + #u] + pr.w * qkv[vb.w + #u];
    return r;
}

fn head_store(o: Head, base: u32, inv: f32) {
    out[base + #u] = o.c# * inv;
}

// The output as an array, for the merge of split.wgsl (indexed once per query, after the key loop).
fn head_array(o: Head) -> array<vec4<f32>, H> {
    var a: array<vec4<f32>, H>;
    a[#] = o.c#;
    return a;
}
