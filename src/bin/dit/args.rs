//! The command line: the commands (their arguments live beside each command; the GPU's, which every command
//! shares, in `gpu.rs`).

use crate::bench::BenchArgs;
use crate::convert::ConvertArgs;
use crate::gpu::GpuArgs;
use crate::sample::SampleArgs;
use clap::{Parser, Subcommand};
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
