//! Shared test helpers: one GPU per fp16 weight path, random data, comparisons that print their max difference, and
//! the CPU references of the kernels (`cpu`).
#![allow(dead_code)]

pub mod cpu;

use dit_wasm::gpu::{F16Mode, Gpu, GpuOptions, LinearPath};
use dit_wasm::util::SplitMix64;

/// The device configurations to run a parity test on: weights in storage buffers read as packed u32, the same with
/// shader-f16 where the adapter has it, and linear layers through textures. With `DIT_REQUIRE_F16=1` (set by the
/// test script for lavapipe, which has shader-f16) a missing f16 path fails.
pub fn gpus() -> Vec<Gpu> {
    let open = |f16, linear_path| pollster::block_on(Gpu::new(&GpuOptions { f16, linear_path, ..Default::default() }));
    let mut out = vec![open(F16Mode::Packed, LinearPath::Buffers)
        .expect("no GPU adapter: install mesa-vulkan-drivers (lavapipe) or run on a machine with a GPU")];
    out.push(open(F16Mode::Packed, LinearPath::Textures).expect("texture path"));
    match open(F16Mode::Native, LinearPath::Buffers) {
        Ok(g) => out.push(g),
        Err(e) => {
            if std::env::var("DIT_REQUIRE_F16").as_deref() == Ok("1") {
                panic!("DIT_REQUIRE_F16=1 but the shader-f16 path is unavailable: {e}");
            }
            eprintln!("note: shader-f16 path not tested on this adapter: {e}");
        }
    }
    out
}

/// The texture path with subgroup operations left off (the kernels browsers run).
#[allow(dead_code)]
pub fn texture_gpu_without_subgroups() -> Gpu {
    let opts = GpuOptions { linear_path: LinearPath::Textures, no_subgroups: true, ..Default::default() };
    pollster::block_on(Gpu::new(&opts)).expect("texture path without subgroups")
}

pub fn label(gpu: &Gpu) -> String {
    let path = match (gpu.report.texture_linears, gpu.report.subgroups) {
        (true, true) => "textures+subgroups",
        (true, false) => "textures",
        _ => gpu.report.f16_weights_path,
    };
    format!("{} [{path}]", gpu.report.name)
}

pub fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = SplitMix64(seed);
    (0..n).map(|_| r.uniform() * scale).collect()
}

/// Rounds values to fp16 and back, as the GPU sees weights.
pub fn to_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).fold(0f32, |m, (x, y)| if x.is_nan() || y.is_nan() { f32::INFINITY } else { m.max((x - y).abs()) })
}

/// Asserts `max |ours - reference| <= rel * max |reference|` and prints the figures either way.
pub fn check(what: &str, ours: &[f32], reference: &[f32], rel: f32) {
    let d = max_diff(ours, reference);
    let m = max_abs(reference);
    let ok = d <= rel * m;
    println!(
        "{} {what}: max|diff| = {d:.3e}, max|ref| = {m:.3e}, rel = {:.3e} (limit {rel:.0e})",
        if ok { "OK    " } else { "NOT OK" },
        d / m.max(1e-30)
    );
    assert!(ok, "{what}: max|diff| {d} > {rel} * {m}");
}

/// FNV-1a 64 of a string (seeds the deterministic weights shared with tools/make_vae_fixtures.py).
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01B3))
}

/// `n` values of the deterministic stream of tools/make_vae_fixtures.py: SplitMix64 from FNV-1a(name), mapped to
/// [-1, 1) in f32, times `scale`.
pub fn det_values(name: &str, n: usize, scale: f32) -> Vec<f32> {
    let mut r = SplitMix64(fnv1a64(name));
    (0..n).map(|_| r.uniform() * scale).collect()
}

/// The deterministic value of a weight tensor, as tools/make_vae_fixtures.py's `det_tensor` (before fp16 rounding).
pub fn det_tensor(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let is_norm_weight = name.contains("norm") && name.ends_with(".weight");
    let scale = if shape.len() >= 2 {
        (1.0 / (shape[1..].iter().product::<usize>() as f64).sqrt()) as f32
    } else if is_norm_weight {
        0.1
    } else {
        0.05
    };
    let v = det_values(name, n, scale);
    if shape.len() == 1 && is_norm_weight {
        v.into_iter().map(|x| 1.0 + x).collect()
    } else {
        v
    }
}
