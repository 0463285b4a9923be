//! Full-size models, ignored by default (minutes and gigabytes on lavapipe); run with
//! `cargo test --release --test full_size -- --ignored --nocapture`:
//! - DiT-XL/2 at 256 px with random weights: the forward runs and stays finite (see also `dit bench --preset XL/2
//!   --random-weights`);
//! - the SD VAE decoding a 64x64 latent to 512x512 under WebGPU's default 128 MiB storage binding limit (its 256 MiB
//!   activations in channel parts), against diffusers (tests/fixtures/vae_sd512_io.safetensors);
//! - at WebGPU's default limits (`LimitsMode::Default`, `--limits default`): DiT-XL/2 at 256 and 512 px with random
//!   weights, and the SD VAE's 512 px decode, each matching the device opened with the adapter's limits (tests/limits.rs
//!   runs the same shapes at depth 2 and a narrower VAE in every test run).
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use dit_wasm::arch::{dit_tensors, vae_tensors, VaeConfig};
use dit_wasm::gpu::LimitsMode;
use dit_wasm::model::Vae;
use dit_wasm::{Dit, DitConfig, Gpu, GpuOptions, GpuWeights};

#[test]
#[ignore]
fn dit_xl2_256_forward_is_finite() {
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::default())).expect("GPU");
    let cfg = DitConfig::preset("XL/2", 256).unwrap();
    assert_eq!(cfg.parameters(), 674_834_720);
    let w = GpuWeights::random(&gpu, &dit_tensors(&cfg), 1).unwrap();
    let dit = Dit::load(&gpu, cfg, w).unwrap();
    let plan = dit.plan(&gpu, 2, 32).unwrap();
    let x: Vec<f32> = common::random(2, plan.x.numel(), 1.7);
    let out = pollster::block_on(plan.forward(&gpu, &x, &[999.0, 999.0], &[207, 1000])).unwrap();
    let finite = out.iter().all(|v| v.is_finite());
    println!(
        "DiT-XL/2 256 px on {}: {} outputs, finite: {finite}, max |out| {}",
        gpu.report.name,
        out.len(),
        common::max_abs(&out)
    );
    assert!(finite);
}

#[test]
#[ignore]
fn sd_vae_512_within_the_default_binding_limit() {
    let cap = 128 << 20;
    let gpu = pollster::block_on(Gpu::new(&GpuOptions { max_storage_binding: Some(cap), ..Default::default() }))
        .expect("GPU");
    assert_eq!(gpu.report.max_storage_buffer_binding_size, cap);
    let cfg = VaeConfig::sd();
    let w = GpuWeights::from_values(&gpu, &vae_tensors(&cfg), |p| common::det_tensor(&p.name, &p.shape)).unwrap();
    let vae = Vae::load(&gpu, cfg, w).unwrap();
    let plan = vae.plan(&gpu, 64, 64).unwrap();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vae_sd512_io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let latent: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("latent").unwrap().data());
    let want: Vec<f32> = bytemuck::pod_collect_to_vec::<u8, half::f16>(st.tensor("image").unwrap().data())
        .into_iter()
        .map(f32::from)
        .collect();
    let t0 = std::time::Instant::now();
    let img = pollster::block_on(plan.decode(&gpu, &latent)).unwrap();
    gpu.check().unwrap();
    println!(
        "{}: decode 64x64 -> 512x512 in {:.1} s, {} dispatches, activations {:.0} MiB in up to {} parts per tensor",
        gpu.report.name,
        t0.elapsed().as_secs_f64(),
        plan.dispatches().len(),
        plan.activation_bytes as f64 / (1 << 20) as f64,
        plan.max_parts
    );
    assert_eq!(plan.max_parts, 2);
    assert!(img.iter().all(|v| v.is_finite()));
    // The reference is stored in fp16 (relative step 2^-11): well inside the tolerance.
    common::check("sd-vae 64x64 -> 512x512 vs diffusers", &img, &want, 1e-2);
}

fn open(limits: LimitsMode) -> Gpu {
    pollster::block_on(Gpu::new(&GpuOptions { limits, ..Default::default() })).expect("GPU")
}

/// Asserts `max |a - b| <= 1e-5` and prints the figures either way.
fn same(what: &str, a: &[f32], b: &[f32]) {
    let d = common::max_diff(a, b);
    println!("{what}: max|diff| = {d:.3e} (bound 1e-5), max|out| = {:.3e}", common::max_abs(b));
    assert!(d <= 1e-5, "{what}: max|diff| {d} > 1e-5");
}

#[test]
#[ignore]
fn dit_xl2_at_default_limits_matches_the_adapter_limits() {
    let cfg = DitConfig::preset("XL/2", 256).unwrap();
    let mut outs = vec![];
    for limits in [LimitsMode::Default, LimitsMode::Adapter] {
        let gpu = open(limits);
        assert_eq!(gpu.report.limits, limits);
        if limits == LimitsMode::Default {
            assert_eq!(gpu.device.limits().max_storage_buffer_binding_size, 128 << 20);
            assert_eq!(gpu.device.limits().max_texture_dimension_2d, 8192);
        }
        let w = GpuWeights::random(&gpu, &dit_tensors(&cfg), 1).unwrap();
        let dit = Dit::load(&gpu, cfg.clone(), w).unwrap();
        let mut per_res = vec![];
        for latent in [32, 64] {
            let plan = dit.plan(&gpu, 2, latent).unwrap();
            let x: Vec<f32> = common::random(latent as u64, plan.x.numel(), 1.7);
            let t0 = std::time::Instant::now();
            let out = pollster::block_on(plan.forward(&gpu, &x, &[999.0, 250.0], &[207, 1000])).unwrap();
            gpu.check().unwrap();
            println!(
                "DiT-XL/2 {} px on {} ({} limits, binding {} MiB): forward {:.1} s, max |out| {:.3}",
                latent * 8,
                gpu.report.name,
                gpu.report.limits.name(),
                gpu.report.max_storage_buffer_binding_size >> 20,
                t0.elapsed().as_secs_f64(),
                common::max_abs(&out)
            );
            assert!(out.iter().all(|v| v.is_finite()));
            per_res.push(out);
        }
        outs.push(per_res);
    }
    for (i, px) in [256, 512].into_iter().enumerate() {
        same(&format!("DiT-XL/2 {px} px, default vs adapter limits"), &outs[0][i], &outs[1][i]);
    }
}

#[test]
#[ignore]
fn sd_vae_512_at_default_limits_matches_the_adapter_limits() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vae_sd512_io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let latent: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("latent").unwrap().data());
    let want: Vec<f32> = bytemuck::pod_collect_to_vec::<u8, half::f16>(st.tensor("image").unwrap().data())
        .into_iter()
        .map(f32::from)
        .collect();
    let mut images = vec![];
    for limits in [LimitsMode::Default, LimitsMode::Adapter] {
        let gpu = open(limits);
        let cfg = VaeConfig::sd();
        let w = GpuWeights::from_values(&gpu, &vae_tensors(&cfg), |p| common::det_tensor(&p.name, &p.shape)).unwrap();
        let vae = Vae::load(&gpu, cfg, w).unwrap();
        let plan = vae.plan(&gpu, 64, 64).unwrap();
        let t0 = std::time::Instant::now();
        let img = pollster::block_on(plan.decode(&gpu, &latent)).unwrap();
        gpu.check().unwrap();
        println!(
            "{} ({} limits, binding {} MiB, textures {}): decode 64x64 -> 512x512 in {:.1} s, activations in up to {} parts",
            gpu.report.name,
            gpu.report.limits.name(),
            gpu.report.max_storage_buffer_binding_size >> 20,
            gpu.report.max_texture_dimension_2d,
            t0.elapsed().as_secs_f64(),
            plan.max_parts
        );
        if limits == LimitsMode::Default {
            assert_eq!(plan.max_parts, 2);
        }
        common::check(&format!("sd-vae 512 px, {} limits, vs diffusers", gpu.report.limits.name()), &img, &want, 1e-2);
        images.push(img);
    }
    same("sd-vae 64x64 -> 512x512, default vs adapter limits", &images[0], &images[1]);
}
