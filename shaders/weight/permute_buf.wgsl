// Destination of permute.wgsl: an fp16 buffer, written two halves (one u32) per invocation.
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i * 2u >= p.cout_pad * p.taps * p.cin) {
        return;
    }
    dst[i] = pack2x16float(vec2<f32>(value(2u * i), value(2u * i + 1u)));
}
