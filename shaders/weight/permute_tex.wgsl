// Destination of permute.wgsl: an rgba16float texture of (taps * Cin / 4) x Cout_pad texels, one per invocation.
@group(0) @binding(2) var dst: texture_storage_2d<rgba16float, write>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let row4 = p.taps * p.cin / 4u;
    if (i >= p.cout_pad * row4) {
        return;
    }
    let o = 4u * i;
    textureStore(dst, vec2<u32>(i % row4, i / row4), vec4<f32>(value(o), value(o + 1u), value(o + 2u), value(o + 3u)));
}
