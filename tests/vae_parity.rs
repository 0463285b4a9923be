//! SD-VAE decoder parity against diffusers' AutoencoderKL (fixtures from tools/make_vae_fixtures.py): a small-channel
//! config converted from each checkpoint layout, and the real sd-vae architecture at a 32x32 latent.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{check, gpus, label};
use dit_wasm::arch::{vae_tensors, VaeConfig};
use dit_wasm::model::Vae;
use dit_wasm::weights::convert::{convert, ConvertOptions};
use dit_wasm::weights::DirSource;
use dit_wasm::{Gpu, GpuOptions, GpuWeights};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn io(name: &str) -> (Vec<usize>, Vec<f32>, Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |n: &str| {
        let v = st.tensor(n).unwrap();
        (v.shape().to_vec(), bytemuck::pod_collect_to_vec::<u8, f32>(v.data()))
    };
    let (ls, l) = get("latent");
    let (is, i) = get("image");
    (ls, l, is, i)
}

fn shard_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn small_vae_matches_diffusers_from_every_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["diffusers", "legacy", "ldm"].iter().map(|n| tmp.path().join(n)).collect();
    let opts = ConvertOptions { shard_mib: 1, ..Default::default() };
    let idx = convert(&[fixture("vae_small/diffusion_pytorch_model.safetensors")], &dirs[0], &opts).unwrap();
    // The legacy and ldm files have no config.json beside them: the group count comes from the option.
    let opts8 = ConvertOptions { norm_groups: Some(8), ..opts };
    convert(&[fixture("vae_small_legacy.safetensors")], &dirs[1], &opts8).unwrap();
    convert(&[fixture("vae_small_ldm.safetensors")], &dirs[2], &opts8).unwrap();
    let reference = shard_bytes(&dirs[0]);
    assert!(!reference.is_empty());
    for d in &dirs[1..] {
        assert_eq!(shard_bytes(d), reference, "{} gives different shards than the diffusers layout", d.display());
        assert_eq!(
            std::fs::read(d.join("model.safetensors.index.json")).unwrap(),
            std::fs::read(dirs[0].join("model.safetensors.index.json")).unwrap()
        );
    }
    println!("diffusers, legacy and ldm layouts give byte-identical shards ({} files)", reference.len());

    let cfg: VaeConfig = serde_json::from_value(idx.metadata.config.clone()).unwrap();
    assert_eq!(cfg.block_out_channels, [32, 64]);
    assert_eq!(cfg.norm_num_groups, 8);
    let (ls, latent, is, want) = io("vae_small_io.safetensors");
    for gpu in gpus() {
        let (_, w) = pollster::block_on(dit_wasm::loader::from_dir(&gpu, &DirSource(dirs[0].clone()))).unwrap();
        let vae = Vae::load(&gpu, cfg.clone(), w).unwrap();
        let plan = vae.plan(&gpu, ls[2], ls[3]).unwrap();
        let img = pollster::block_on(plan.decode(&gpu, &latent)).unwrap();
        assert_eq!(img.len(), is.iter().product::<usize>());
        check(&format!("{} VAE small 8x8 -> 16x16", label(&gpu)), &img, &want, 1e-3);
    }
}

#[test]
fn sd_vae_architecture_at_32x32_latent() {
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::default())).unwrap();
    let cfg = VaeConfig::sd();
    let planned = vae_tensors(&cfg);
    assert_eq!(cfg.parameters(), 49_490_199);
    let w = GpuWeights::from_values(&gpu, &planned, |p| common::det_tensor(&p.name, &p.shape)).unwrap();
    let vae = Vae::load(&gpu, cfg, w).unwrap();
    let plan = vae.plan(&gpu, 32, 32).unwrap();
    let (_, latent, _, want) = io("vae_sd_io.safetensors");
    let t0 = std::time::Instant::now();
    let img = pollster::block_on(plan.decode(&gpu, &latent)).unwrap();
    println!(
        "decode 32x32 -> 256x256 took {:.1} s ({} dispatches, activations {:.1} MB)",
        t0.elapsed().as_secs_f64(),
        plan.dispatches().len(),
        plan.activation_bytes as f64 / 1e6
    );
    assert!(img.iter().all(|v| v.is_finite()));
    check(&format!("{} sd-vae 32x32 -> 256x256", label(&gpu)), &img, &want, 1e-2);
}

/// Capping the storage binding at 32 KiB makes the decoder keep its 32x32 activations in channel parts (4 parts of
/// the 32-channel tensors, 2 of the 16-channel ones), as a 512 px SD decode does under WebGPU's default 128 MiB
/// limit. The device enforces the cap, so a binding over it would fail validation; the image must still match
/// diffusers, and match the unsplit decode on the same device path.
#[test]
fn activations_over_the_binding_limit_are_split_into_channel_parts() {
    let cfg =
        VaeConfig { block_out_channels: vec![16, 32, 32], layers_per_block: 1, norm_num_groups: 4, ..VaeConfig::sd() };
    let planned = vae_tensors(&cfg);
    let (ls, latent, is, want) = io("vae_split_io.safetensors");
    assert_eq!((ls[2], is[2]), (8, 32));
    let cap = 32 * 1024;
    for (capped, base) in gpus_capped(cap).into_iter().zip(gpus()) {
        let mut images = vec![];
        for gpu in [&capped, &base] {
            let w = GpuWeights::from_values(gpu, &planned, |p| common::det_tensor(&p.name, &p.shape)).unwrap();
            let vae = Vae::load(gpu, cfg.clone(), w).unwrap();
            let plan = vae.plan(gpu, 8, 8).unwrap();
            let img = pollster::block_on(plan.decode(gpu, &latent)).unwrap();
            gpu.check().unwrap();
            println!(
                "{}: binding limit {} bytes, activations in up to {} parts, {} dispatches",
                label(gpu),
                gpu.report.max_storage_buffer_binding_size,
                plan.max_parts,
                plan.dispatches().len()
            );
            images.push((plan.max_parts, img));
        }
        assert_eq!(capped.report.max_storage_buffer_binding_size, cap);
        assert_eq!(images[0].0, 4, "the capped device should need 4 parts");
        assert_eq!(images[1].0, 1);
        check(&format!("{} split decode vs diffusers", label(&capped)), &images[0].1, &want, 1e-3);
        check(&format!("{} split vs unsplit decode", label(&capped)), &images[0].1, &images[1].1, 1e-5);
    }
}

/// The devices of [`gpus`], each asking for at most `cap` bytes per storage binding.
fn gpus_capped(cap: u64) -> Vec<Gpu> {
    use dit_wasm::gpu::{F16Mode, LinearPath};
    let mut out = vec![];
    for (f16, linear_path) in [
        (F16Mode::Packed, LinearPath::Buffers),
        (F16Mode::Packed, LinearPath::Textures),
        (F16Mode::Native, LinearPath::Buffers),
    ] {
        let opts = GpuOptions { f16, linear_path, max_storage_binding: Some(cap), ..Default::default() };
        match pollster::block_on(Gpu::new(&opts)) {
            Ok(g) => out.push(g),
            Err(e) => eprintln!("note: {f16:?} path not tested: {e}"),
        }
    }
    out
}
