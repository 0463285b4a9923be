// Accessors for layernorm_rows.wgsl's per_row reading through textures (CPU adapters): x staged into `xt`
// (rgba32float, width D/4, one row per token) and mod into `mt` (width mod_stride/4, one row per sample), declared by
// texture_decl! as `load_xt` / `load_mt`.

fn x_at(c: u32, row: u32) -> vec4<f32> {
    return load_xt(vec2<u32>(c, row));
}

fn mod_at(c: u32, sample: u32) -> vec4<f32> {
    return load_mt(vec2<u32>(c, sample));
}
