//! `dit`: the native command-line tool (convert checkpoints, inspect model directories, run forwards, sample,
//! benchmark, dump the kernels). Native only; the browser uses the library through `src/web`.
//!
//! `main.rs` parses the command line and runs the command; `args.rs` holds the commands, `output.rs` checks and
//! writes output files, and each command has its own file: `gpu.rs` (which also holds the GPU arguments and opens
//! the GPU for the others), `convert.rs`, `info.rs`, `forward.rs`, `sample.rs`, `decode.rs`, `bench.rs` and
//! `kernels.rs`. Models are loaded through the library's `loader`, the same path as the browser's.

#[cfg(not(target_arch = "wasm32"))]
mod args;
#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod convert;
#[cfg(not(target_arch = "wasm32"))]
mod decode;
#[cfg(not(target_arch = "wasm32"))]
mod forward;
#[cfg(not(target_arch = "wasm32"))]
mod gpu;
#[cfg(not(target_arch = "wasm32"))]
mod info;
#[cfg(not(target_arch = "wasm32"))]
mod kernels;
#[cfg(not(target_arch = "wasm32"))]
mod output;
#[cfg(not(target_arch = "wasm32"))]
mod sample;

#[cfg(not(target_arch = "wasm32"))]
use {
    args::{Cli, Cmd},
    clap::Parser,
    dit_wasm::Result,
    std::process::ExitCode,
};

#[cfg(not(target_arch = "wasm32"))]
fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_runtime_dir();
    match pollster::block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}

/// Mesa's Vulkan drivers (lavapipe among them) print "error: XDG_RUNTIME_DIR is invalid or not set" when creating an
/// instance without a runtime directory, a line that is not the user's error. Where none is usable, point it at a
/// private one, as the login manager would (the scripts' env.sh does the same). Runs before any thread starts.
#[cfg(not(target_arch = "wasm32"))]
fn quiet_runtime_dir() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        use std::path::Path;
        let usable = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).is_dir());
        if usable {
            return;
        }
        let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return };
        let dir = std::env::temp_dir().join(format!("dit-wasm-xdg-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Only a folder of this user's that no one else can enter (one made by another user is not trusted).
        let ours =
            std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o777 == 0o700);
        if ours {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Gpu(a) => gpu::run(&a).await,
        Cmd::Info { dir } => info::run(&dir).await,
        Cmd::Convert(a) => convert::run(a),
        Cmd::Forward { model, x, t, y, r, out, gpu } => {
            forward::run(&model, forward::Inputs { x: &x, t: &t, y: &y, r: r.as_deref() }, &out, &gpu).await
        }
        Cmd::Bench(b) => bench::run(b).await,
        Cmd::Sample(a) => sample::run(a).await,
        Cmd::Decode { vae, latent, out, gpu } => decode::run(&vae, &latent, &out, &gpu).await,
        Cmd::Kernels { dump, gpu } => kernels::run(&dump, &gpu).await,
    }
}
