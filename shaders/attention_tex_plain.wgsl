// The texture attention kernel without subgroups (see attention_tex.wgsl): 4 keys per step.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hd4 = HD / 4u;
    let d4 = p.d / 4u;
    // Two queries per invocation, 64 apart: each key and value texel fetched serves both.
    let ta = wg.x * 128u + lid;
    let tb = ta + 64u;
    if (ta >= p.tokens) {
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
        qa[c] = load_qkvt(vec2<u32>(qc + c, row0 + ta)) * p.scale;
        qb[c] = load_qkvt(vec2<u32>(qc + c, row0 + min(tb, last))) * p.scale;
        oa[c] = vec4<f32>(0.0);
        ob[c] = vec4<f32>(0.0);
    }
    var max_a = -3.0e38;
    var max_b = -3.0e38;
    var sum_a = 0.0;
    var sum_b = 0.0;
    for (var s = 0u; s < p.tokens; s += 4u) {
        // Scores of keys s..s+3 (keys past T get -inf weight).
        let r = row0 + s;
        let r1 = row0 + min(s + 1u, last);
        let r2 = row0 + min(s + 2u, last);
        let r3 = row0 + min(s + 3u, last);
        var sa = vec4<f32>(0.0);
        var sb = vec4<f32>(0.0);
        for (var c = 0u; c < hd4; c++) {
            let k = mat4x4<f32>(
                load_qkvt(vec2<u32>(kc + c, r)),
                load_qkvt(vec2<u32>(kc + c, r1)),
                load_qkvt(vec2<u32>(kc + c, r2)),
                load_qkvt(vec2<u32>(kc + c, r3)),
            );
            sa += qa[c] * k;
            sb += qb[c] * k;
        }
        let valid = vec4<bool>(s < p.tokens, s + 1u < p.tokens, s + 2u < p.tokens, s + 3u < p.tokens);
        sa = select(vec4<f32>(-3.0e38), sa, valid);
        sb = select(vec4<f32>(-3.0e38), sb, valid);
        let nma = max(max_a, max(max(sa.x, sa.y), max(sa.z, sa.w)));
        let nmb = max(max_b, max(max(sb.x, sb.y), max(sb.z, sb.w)));
        let alpha_a = exp(max_a - nma);
        let alpha_b = exp(max_b - nmb);
        let pa = select(vec4<f32>(0.0), exp(sa - nma), valid);
        let pb = select(vec4<f32>(0.0), exp(sb - nmb), valid);
        sum_a = sum_a * alpha_a + pa.x + pa.y + pa.z + pa.w;
        sum_b = sum_b * alpha_b + pb.x + pb.y + pb.z + pb.w;
        max_a = nma;
        max_b = nmb;
        for (var c = 0u; c < hd4; c++) {
            // Columns: the value texels of keys s..s+3, so v * p = sum_j p[j] v_j.
            let v = mat4x4<f32>(
                load_qkvt(vec2<u32>(vc + c, r)),
                load_qkvt(vec2<u32>(vc + c, r1)),
                load_qkvt(vec2<u32>(vc + c, r2)),
                load_qkvt(vec2<u32>(vc + c, r3)),
            );
            oa[c] = oa[c] * alpha_a + v * pa;
            ob[c] = ob[c] * alpha_b + v * pb;
        }
    }
    let base_a = (row0 + ta) * d4 + qc;
    let base_b = (row0 + tb) * d4 + qc;
    for (var c = 0u; c < hd4; c++) {
        out[base_a + c] = oa[c] * (1.0 / sum_a);
        if (tb < p.tokens) {
            out[base_b + c] = ob[c] * (1.0 / sum_b);
        }
    }
}
