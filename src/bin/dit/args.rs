//! The command line: the commands and the arguments several of them share.

use crate::bench::BenchArgs;
use crate::convert::ConvertArgs;
use crate::sample::SampleArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "dit", version, about = "DiT (Peebles & Xie) on WebGPU compute shaders")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Show the GPU adapter this machine gives: name, backend, features, limits.
    Gpu(GpuArgs),
    /// Show a model: kind, config, parameters, bytes. A model directory has every shard's sha256 verified; a
    /// checkpoint file or a diffusers folder is read as `sample` reads it.
    Info {
        /// Model directory (model.safetensors.index.json), checkpoint file (.safetensors, .bin, .pt), diffusers
        /// folder (a pipeline with model_index.json: shows its DiT and VAE; or one component: config.json + weights),
        /// or a Hub location hf://OWNER/NAME[@REV][/SUBFOLDER].
        dir: PathBuf,
    },
    /// Convert a checkpoint into a model directory of fp16 shards.
    Convert(ConvertArgs),
    /// Run one DiT forward: x [N,C,H,W], t [N], y [N] -> out [N,Cout,H,W] (all .npy).
    Forward {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        x: PathBuf,
        #[arg(long)]
        t: PathBuf,
        #[arg(long)]
        y: PathBuf,
        /// A flow map's end times r [N] (.npy; 0 <= r <= t): the network's output is then u(x; t, r).
        #[arg(long)]
        r: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        gpu: GpuArgs,
    },
    /// Benchmark a DiT forward; prints a table, or one JSON object with --json.
    Bench(BenchArgs),
    /// Generate images of ImageNet classes (or the model's classes): DiT sampling with guidance, then the VAE.
    Sample(SampleArgs),
    /// Decode latents [N, 4, h, w] (.npy, as `sample --latent-out` writes them) into images.
    Decode {
        #[arg(long)]
        vae: PathBuf,
        #[arg(long)]
        latent: PathBuf,
        /// `.png` (a grid, clamped to 8 bits) or `.npy` ([N, 3, H, W] f32, unclamped).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        gpu: GpuArgs,
    },
    /// Write the WGSL of every kernel the device compiles (each op with each kernel choice it offers), one file per
    /// kernel source under DIR, headed by its pipelines' override constants.
    Kernels {
        #[arg(long)]
        dump: PathBuf,
        #[command(flatten)]
        gpu: GpuArgs,
    },
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
