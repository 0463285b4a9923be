// Conv weights in an rgba16float texture `wtex` (declared, with `load_wtex`, by texture_decl! in ops::conv): texel
// (k4, row) holds 4 consecutive weights of a row.

// 4 consecutive weights of row `row` at column group `k4`.
fn w_row4(row: u32, k4: u32) -> vec4<f32> {
    return load_wtex(vec2<u32>(k4, row));
}
