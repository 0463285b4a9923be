// Weight access with `shader-f16`: the same bytes as the packed path, read as vec4<f16>.
enable f16;

alias W4 = vec4<f16>;

fn w4(v: W4) -> vec4<f32> {
    return vec4<f32>(v);
}
