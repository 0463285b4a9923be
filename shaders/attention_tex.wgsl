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
// vectors; no workgroup memory or barriers. The entry point follows this file, generated per head dim by
// ops::attention_tex: 4 keys per step, or with subgroups 8, loaded once per subgroup and broadcast. The head dim HD
// is a multiple of 4.

struct Params {
    tokens: u32,
    heads: u32,
    d: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
