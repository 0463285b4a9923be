// Operand access for kernels whose "weights" are f32 activations (the attention products of the VAE): the same
// W4 / w4 interface as the fp16 preludes.
alias W4 = vec4<f32>;

fn w4(v: W4) -> vec4<f32> {
    return v;
}
