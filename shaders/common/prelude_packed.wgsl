// Weight access without `shader-f16`: fp16 weights are stored as raw halves and read 4 at a time as two u32 words,
// unpacked with unpack2x16float. Works on every WebGPU adapter.
alias W4 = vec2<u32>;

fn w4(v: W4) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
}
