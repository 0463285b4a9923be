//! `dit gpu`, and opening the GPU every command runs on.

use crate::args::{F16Arg, GpuArgs, LimitsArg, LinearArg};
use dit_wasm::gpu::{F16Mode, Gpu, GpuOptions, LimitsMode, LinearPath};
use dit_wasm::Result;

/// `dit gpu`: prints the adapter's report as JSON.
pub async fn run(a: &GpuArgs) -> Result<()> {
    let gpu = open_gpu(a).await?;
    println!("{}", serde_json::to_string_pretty(&gpu.report).expect("report serializes"));
    Ok(())
}

pub async fn open_gpu(a: &GpuArgs) -> Result<Gpu> {
    let f16 = match a.f16 {
        F16Arg::Auto => F16Mode::Auto,
        F16Arg::Packed => F16Mode::Packed,
        F16Arg::Native => F16Mode::Native,
    };
    let linear_path = match a.linear {
        LinearArg::Auto => LinearPath::Auto,
        LinearArg::Buffers => LinearPath::Buffers,
        LinearArg::Textures => LinearPath::Textures,
    };
    let limits = match a.limits {
        LimitsArg::Adapter => LimitsMode::Adapter,
        LimitsArg::Default => LimitsMode::Default,
    };
    Gpu::new(&GpuOptions { f16, linear_path, limits, ..Default::default() }).await
}
