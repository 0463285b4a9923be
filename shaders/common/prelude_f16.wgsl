// Weight access with `shader-f16`: the same bytes as the packed path, read as vec4<f16>.
enable f16;

alias W4 = vec4<f16>;

fn w4(v: W4) -> vec4<f32> {
    return vec4<f32>(v);
}

// x rounded to f16 for the kernels that multiply in f16 (clamped first: a value past the f16 range has no defined
// conversion).
fn h4(v: vec4<f32>) -> vec4<f16> {
    return vec4<f16>(clamp(v, vec4<f32>(-65504.0), vec4<f32>(65504.0)));
}
