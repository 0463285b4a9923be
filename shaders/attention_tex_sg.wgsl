// The texture attention kernel with subgroup broadcasts (see attention_tex.wgsl), for subgroups of at least 8
// invocations. All invocations of a workgroup walk the same keys; instead of each loading every key and value texel,
// lane l of a subgroup loads those of key s + l of each group of 8 and bcast4 (bcast8.wgsl) hands them to every lane: per 8 keys an invocation loads 2 HD / 4 texels instead of 16 HD / 4.
// Every invocation runs the key loop (queries past T are clamped, then not stored), so the whole subgroup takes part
// in every broadcast; a subgroup whose queries are all past T returns at once.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let hd4 = HD / 4u;
    let d4 = p.d / 4u;
    let ta = wg.x * 128u + lid;
    let tb = ta + 64u;
    if (subgroupAll(ta >= p.tokens)) {
        return;
    }
    let last = p.tokens - 1u;
    let row0 = wg.z * p.tokens;
    let qc = wg.y * hd4;
    let kc = d4 + qc;
    let vc = 2u * d4 + qc;
    var qa: array<vec4<f32>, MAX_HD4>;
    var qb: array<vec4<f32>, MAX_HD4>;
    var oa: array<vec4<f32>, MAX_HD4>;
    var ob: array<vec4<f32>, MAX_HD4>;
    for (var c = 0u; c < hd4; c++) {
        qa[c] = load_qkvt(vec2<u32>(qc + c, row0 + min(ta, last))) * p.scale;
        qb[c] = load_qkvt(vec2<u32>(qc + c, row0 + min(tb, last))) * p.scale;
        oa[c] = vec4<f32>(0.0);
        ob[c] = vec4<f32>(0.0);
    }
    var max_a = -3.0e38;
    var max_b = -3.0e38;
    var sum_a = 0.0;
    var sum_b = 0.0;
    let mine = min(lane, 7u);
    for (var s = 0u; s < p.tokens; s += 8u) {
        // This lane's key of the group (clamped past T; those keys get zero weight below).
        let r = row0 + min(s + mine, last);
        var sa0 = vec4<f32>(0.0);
        var sa1 = vec4<f32>(0.0);
        var sb0 = vec4<f32>(0.0);
        var sb1 = vec4<f32>(0.0);
        for (var c = 0u; c < hd4; c++) {
            let kv = load_qkvt(vec2<u32>(kc + c, r));
            let k0 = bcast4(kv, 0u);
            let k1 = bcast4(kv, 1u);
            sa0 += qa[c] * k0;
            sa1 += qa[c] * k1;
            sb0 += qb[c] * k0;
            sb1 += qb[c] * k1;
        }
        let v0 = vec4<bool>(s < p.tokens, s + 1u < p.tokens, s + 2u < p.tokens, s + 3u < p.tokens);
        let v1 = vec4<bool>(s + 4u < p.tokens, s + 5u < p.tokens, s + 6u < p.tokens, s + 7u < p.tokens);
        sa0 = select(vec4<f32>(-3.0e38), sa0, v0);
        sa1 = select(vec4<f32>(-3.0e38), sa1, v1);
        sb0 = select(vec4<f32>(-3.0e38), sb0, v0);
        sb1 = select(vec4<f32>(-3.0e38), sb1, v1);
        let ma = max(sa0, sa1);
        let mb = max(sb0, sb1);
        let nma = max(max_a, max(max(ma.x, ma.y), max(ma.z, ma.w)));
        let nmb = max(max_b, max(max(mb.x, mb.y), max(mb.z, mb.w)));
        let alpha_a = exp(max_a - nma);
        let alpha_b = exp(max_b - nmb);
        let pa0 = select(vec4<f32>(0.0), exp(sa0 - nma), v0);
        let pa1 = select(vec4<f32>(0.0), exp(sa1 - nma), v1);
        let pb0 = select(vec4<f32>(0.0), exp(sb0 - nmb), v0);
        let pb1 = select(vec4<f32>(0.0), exp(sb1 - nmb), v1);
        sum_a = sum_a * alpha_a + dot(pa0 + pa1, vec4<f32>(1.0));
        sum_b = sum_b * alpha_b + dot(pb0 + pb1, vec4<f32>(1.0));
        max_a = nma;
        max_b = nmb;
        for (var c = 0u; c < hd4; c++) {
            // Columns: the value texels of keys s..s+7, so v * p = sum_j p[j] v_j.
            let vv = load_qkvt(vec2<u32>(vc + c, r));
            let w0 = bcast4(vv, 0u);
            let w1 = bcast4(vv, 1u);
            oa[c] = oa[c] * alpha_a + w0 * pa0 + w1 * pa1;
            ob[c] = ob[c] * alpha_b + w0 * pb0 + w1 * pb1;
        }
    }
    let base_a = (row0 + ta) * d4 + qc;
    let base_b = (row0 + tb) * d4 + qc;
    for (var c = 0u; c < hd4; c++) {
        if (ta < p.tokens) {
            out[base_a + c] = oa[c] * (1.0 / sum_a);
        }
        if (tb < p.tokens) {
            out[base_b + c] = ob[c] * (1.0 / sum_b);
        }
    }
}
