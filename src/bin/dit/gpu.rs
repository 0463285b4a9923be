//! `dit gpu`, the GPU arguments every command takes, and opening the GPU every command runs on.

use clap::{Args, ValueEnum};
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

#[derive(Args, Clone)]
pub struct GpuArgs {
    /// How fp16 weights are read: shader-f16 when offered (auto), always packed u32, or require shader-f16.
    #[arg(long, value_enum, default_value_t = F16Arg::Auto)]
    pub f16: F16Arg,
    /// Where linear layers read weights and inputs: textures on CPU adapters (auto), storage buffers, or textures.
    #[arg(long, value_enum, default_value_t = LinearArg::Auto)]
    pub linear: LinearArg,
    /// The device's limits: what the adapter offers (adapter), or none above WebGPU's defaults (default: 128 MiB per
    /// storage binding, 256 MiB per buffer, 16 KiB of workgroup storage, 256 invocations, as Safari and many phones
    /// give).
    #[arg(long, value_enum, default_value_t = LimitsArg::Adapter)]
    pub limits: LimitsArg,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum LimitsArg {
    Adapter,
    Default,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum LinearArg {
    Auto,
    Buffers,
    Textures,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum F16Arg {
    Auto,
    Packed,
    Native,
}
