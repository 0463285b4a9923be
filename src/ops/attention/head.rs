//! The head-dim helpers of the attention kernels (`shaders/attention/split_head.wgsl`, `texture_head.wgsl`),
//! written out per head dim: a query and its running output are `Head`s, one named vec4 member per 4 head dims, and
//! each helper walks them line by line, so that no shader compiler has to keep an indexed array in registers (GPU
//! compilers do not reliably; lavapipe's and SwiftShader's do not unroll loops).

/// The marker of a line written once per vec4 of a head, replaced by its index.
const MARKER: char = '#';

/// `helpers` for a head of `hd4` vec4s: `const H` first, then each line that holds the marker repeated for every
/// vec4, the marker replaced by its index.
pub(super) fn per_head_dim(helpers: &str, hd4: u32) -> String {
    let mut out = format!("const H: u32 = {hd4}u;\n");
    for line in helpers.lines() {
        let copies = if line.contains(MARKER) { hd4 } else { 1 };
        for c in 0..copies {
            out.push_str(&line.replace(MARKER, &c.to_string()));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn marked_lines_are_written_once_per_vec4() {
        let out = super::per_head_dim("struct Head {\n    c#: vec4<f32>,\n}\n", 3);
        assert_eq!(
            out,
            "const H: u32 = 3u;\nstruct Head {\n    c0: vec4<f32>,\n    c1: vec4<f32>,\n    c2: vec4<f32>,\n}\n"
        );
    }
}
