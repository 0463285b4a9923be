// Conv weights in an rgba16float texture: texel (k4, row) holds 4 consecutive weights of a row.
@group(0) @binding(2) var wtex: texture_2d<f32>;

// 4 consecutive weights of row `row` at column group `k4`.
fn w_row4(row: u32, k4: u32) -> vec4<f32> {
    return textureLoad(wtex, vec2<u32>(k4, row), 0);
}
