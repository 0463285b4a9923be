// Multi-head self-attention with an online softmax, reading keys and values through a texture (CPU adapters):
//   out[n, t, h*HD + j] = sum_s softmax_s(q_t . k_s / sqrt(HD)) * v_s[j]
// qkvt: rgba32float [rows: N*T, width: 3D/4], the qkv activation staged by a buffer-to-texture copy; each row laid
// out (3, heads, HD). out: [N*T, D] f32 buffer.
//
// qkvt is declared, with `load_qkvt`, by texture_decl! in ops::attention.
//
// Each invocation owns two queries of one (sample, head), 64 apart: workgroup_id = (query block of 128, head,
// sample). It keeps the queries and their running outputs in registers and walks all keys in order, rescaling the
// running sums once per group of keys (the flash-attention recurrence); each key and value texel serves both. Every
// invocation of a workgroup reads the same key and value texels at the same time, which CPU adapters fetch as
// vectors; no workgroup memory or barriers. The entry point follows this file: attention_tex_plain.wgsl (4 keys per
// step) or the subgroup kernel that ops::attention_tex generates per head dim (8 keys per step, loaded once per
// subgroup and broadcast, the queries and outputs as named variables).
// HD (specialisation constant) is the head dim: a multiple of 4, at most 4 * MAX_HD4.

struct Params {
    tokens: u32,
    heads: u32,
    d: u32,
    scale: f32,
}

override HD: u32 = 64u;

const MAX_HD4: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
