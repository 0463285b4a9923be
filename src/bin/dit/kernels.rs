//! `dit kernels --dump DIR`: every kernel's WGSL as the device compiles it (`ops::compile_every_kernel`: each op with
//! each kernel choice the device offers; and the sampler step), one file per source at its path (`linear/workgroup.wgsl`,
//! `attention/split_hd72.wgsl`, ...), headed by the pipelines compiled from it (`// pipeline: ENTRY NAME=value ...`,
//! the override constants). Each file is a whole module that naga or any WGSL tool reads on its own.

use crate::gpu::{open_gpu, GpuArgs};
use dit_wasm::diffusion::sampler::Step;
use dit_wasm::gpu::CompiledKernel;
use dit_wasm::{ops, Error, Result};
use std::path::Path;

pub async fn run(dir: &Path, g: &GpuArgs) -> Result<()> {
    let gpu = open_gpu(g).await?;
    ops::compile_every_kernel(&gpu)?;
    Step::kernel(&gpu)?;
    let pipelines = gpu.kernel_count();
    let kernels = gpu.compiled_kernels();
    for k in &kernels {
        write(dir, k)?;
    }
    println!(
        "{} kernels ({pipelines} pipelines) compiled on {} [{}] written to {}",
        kernels.len(),
        gpu.report.name,
        gpu.report.linear_path(),
        dir.display()
    );
    Ok(())
}

fn write(dir: &Path, k: &CompiledKernel) -> Result<()> {
    let path = dir.join(format!("{}.wgsl", k.path));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut text: String = k.specialisations.iter().map(|s| format!("// pipeline: {s}\n")).collect();
    text.push_str(&k.wgsl);
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}
