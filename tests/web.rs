//! Browser tests (wasm-bindgen-test in headless Chromium, WebGPU on SwiftShader there: no shader-f16; and in headless
//! Firefox, WebGPU on the machine's Vulkan driver: lavapipe, with shader-f16): kernel and model parity with the native
//! fixtures, and a full tiny generate. Run by scripts/test.sh.
#![cfg(target_arch = "wasm32")]

use dit_wasm::arch::TensorSpec;
use dit_wasm::arch::{DitConfig, VaeConfig};
use dit_wasm::diffusion::{CfgChannels, NoiseRng, SamplerKind, Spacing};
use dit_wasm::gpu::{Arena, Gpu, GpuOptions, Tensor};
use dit_wasm::model::{Dit, GpuWeights, Vae};
use dit_wasm::ops::{self, Epilogue, Linear, LinearKernel};
use dit_wasm::pipeline::{sample, SampleRequest};
use dit_wasm::util::SplitMix64;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[allow(dead_code)]
#[path = "common/cpu.rs"]
mod cpu;

const DIT_WEIGHTS: &[u8] = include_bytes!("fixtures/dit_p2_hd64.safetensors");
const DIT_IO: &[u8] = include_bytes!("fixtures/dit_p2_hd64_io.safetensors");
const VAE_WEIGHTS: &[u8] = include_bytes!("fixtures/vae_small_legacy.safetensors");
const VAE_IO: &[u8] = include_bytes!("fixtures/vae_small_io.safetensors");

/// The browser's WebGPU device; a browser without WebGPU fails every test, saying so.
async fn gpu() -> Gpu {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).expect("navigator");
    assert!(
        js_sys::Reflect::has(&navigator, &"gpu".into()).unwrap_or(false),
        "this browser has no WebGPU (navigator.gpu is missing): it is switched off (Firefox: pref dom.webgpu.enabled; \
         Chromium: --enable-unsafe-webgpu)"
    );
    Gpu::new(&GpuOptions::default()).await.expect("WebGPU adapter")
}

fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = SplitMix64(seed);
    (0..n).map(|_| r.uniform() * scale).collect()
}

fn check(what: &str, ours: &[f32], reference: &[f32], rel: f32) {
    assert_eq!(ours.len(), reference.len());
    let d = ours
        .iter()
        .zip(reference)
        .fold(0f32, |m, (a, b)| if a.is_nan() { f32::INFINITY } else { m.max((a - b).abs()) });
    let m = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    web_sys::console::log_1(&format!("{what}: max|diff| = {d:.3e}, max|ref| = {m:.3e}, rel = {:.3e}", d / m).into());
    assert!(d <= rel * m, "{what}: max|diff| {d} > {rel} * {m}");
}

fn tensors(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let vals: Vec<f32> = match v.dtype() {
                safetensors::Dtype::F32 => bytemuck::pod_collect_to_vec(v.data()),
                safetensors::Dtype::F16 => {
                    bytemuck::pod_collect_to_vec::<u8, half::f16>(v.data()).into_iter().map(f32::from).collect()
                }
                safetensors::Dtype::I32 => {
                    bytemuck::pod_collect_to_vec::<u8, i32>(v.data()).into_iter().map(|x| x as f32).collect()
                }
                d => panic!("{d:?}"),
            };
            (name, v.shape().to_vec(), vals)
        })
        .collect()
}

fn get(t: &[(String, Vec<usize>, Vec<f32>)], name: &str) -> Vec<f32> {
    t.iter().find(|x| x.0 == name).unwrap().2.clone()
}

/// The DiT fixture as GPU weights (the official names are already the model directory's; `pos_embed` is fixed).
async fn dit_fixture(gpu: &Gpu) -> Dit {
    let t: Vec<_> = tensors(DIT_WEIGHTS).into_iter().filter(|x| x.0 != "pos_embed").collect();
    let planned: Vec<TensorSpec> = t.iter().map(|(n, s, _)| TensorSpec { name: n.clone(), shape: s.clone() }).collect();
    let w = GpuWeights::from_values(gpu, &planned, |p| get(&t, &p.name)).unwrap();
    let cfg = DitConfig {
        depth: 2,
        hidden_size: 128,
        num_heads: 2,
        patch_size: 2,
        in_channels: 4,
        learn_sigma: true,
        num_classes: 1000,
        input_size: 8,
        mlp_ratio: 4.0,
        arch: Default::default(),
        dmf_depth: None,
        qk_norm: false,
        latent_stats: None,
    };
    Dit::load(gpu, cfg, w).unwrap()
}

#[wasm_bindgen_test]
async fn linear_and_attention_match_cpu() {
    let gpu = gpu().await;
    let (m, n, k) = (70usize, 36usize, 128usize);
    let x = random(1, m * k, 1.0);
    let w: Vec<f32> = random(2, n * k, 0.5).iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    let b: Vec<f32> = random(3, n, 0.5).iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    let layer = Linear::new(
        Tensor::from_f32_as_f16(&gpu, "w", &[n, k], &w).unwrap(),
        Tensor::from_f32_as_f16(&gpu, "b", &[n], &b).unwrap(),
    )
    .unwrap()
    .for_device(&gpu)
    .unwrap();
    let xt = Tensor::from_f32(&gpu, "x", &[m, k], &x).unwrap();
    let y = Arena::new().f32(&gpu, "y", &[m, n]).unwrap();
    gpu.run(&ops::linear(&gpu, &xt, &layer, &y, Epilogue::Gelu, LinearKernel::Tiled).unwrap());
    let want: Vec<f32> = cpu::linear(&x, &w, &b, m, n, k).into_iter().map(cpu::gelu_tanh).collect();
    check(&format!("{} linear+gelu", gpu.report.name), &gpu.read_f32(&y).await.unwrap(), &want, 1e-5);

    let (batch, tokens, heads, hd) = (2usize, 100usize, 2usize, 72usize);
    let d = heads * hd;
    let qkv = random(4, batch * tokens * 3 * d, 2.0);
    let qt = Tensor::from_f32(&gpu, "qkv", &[batch * tokens, 3 * d], &qkv).unwrap();
    let out = Arena::new().f32(&gpu, "out", &[batch * tokens, d]).unwrap();
    gpu.run([&ops::attention(&gpu, &qt, &out, tokens, heads).unwrap()]);
    check("attention hd 72", &gpu.read_f32(&out).await.unwrap(), &cpu::attention(&qkv, batch, tokens, heads, d), 1e-5);
}

#[wasm_bindgen_test]
async fn tuning_is_kept_in_cache_storage() {
    // Kernel choices saved under an adapter key come back onto a new device, and not under another key.
    use dit_wasm::tune::cache as tune_cache;
    let gpu = gpu().await;
    let info = tune_cache::adapter_info().await;
    console_log!("adapter info: {info:?}");
    let key = tune_cache::adapter_key_with(&gpu, &format!("{info} | test"));
    use dit_wasm::gpu::TuneKey;
    gpu.set_choice(TuneKey::Linear { m: 512, k: 1152, n: 1152 }, 3);
    gpu.set_choice(TuneKey::Attention { batch: 2, tokens: 256, heads: 16, head_dim: 72 }, 1);
    tune_cache::save_browser(&gpu, &key).await;
    let fresh = self::gpu().await;
    assert!(fresh.choices().is_empty());
    tune_cache::load_browser(&fresh, &format!("{key} | other")).await;
    assert!(fresh.choices().is_empty());
    tune_cache::load_browser(&fresh, &key).await;
    let (mut got, mut want) = (fresh.choices(), gpu.choices());
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[wasm_bindgen_test]
async fn dit_forward_matches_diffusers() {
    let gpu = gpu().await;
    let dit = dit_fixture(&gpu).await;
    let io = tensors(DIT_IO);
    let (x, t, y, want) = (get(&io, "x"), get(&io, "t"), get(&io, "y"), get(&io, "out"));
    let labels: Vec<u32> = y.iter().map(|&v| v as u32).collect();
    let plan = dit.plan(&gpu, t.len(), 8).unwrap();
    let out = plan.forward(&gpu, &x, &t, &labels).await.unwrap();
    check(&format!("{} [{}] DiT p2_hd64 forward", gpu.report.name, gpu.report.f16_weights_path), &out, &want, 1e-3);
}

#[wasm_bindgen_test]
async fn vae_matches_diffusers() {
    let gpu = gpu().await;
    // The legacy-named file: rename to the canonical names as the converter would.
    let t: Vec<_> = tensors(VAE_WEIGHTS)
        .into_iter()
        .map(|(n, s, v)| {
            (
                n.replace(".query.", ".to_q.")
                    .replace(".key.", ".to_k.")
                    .replace(".value.", ".to_v.")
                    .replace(".proj_attn.", ".to_out.0."),
                s,
                v,
            )
        })
        .collect();
    let cfg = VaeConfig {
        latent_channels: 4,
        out_channels: 3,
        block_out_channels: vec![32, 64],
        layers_per_block: 1,
        norm_num_groups: 8,
        scaling_factor: 0.18215,
        mid_block_add_attention: true,
    };
    let planned = dit_wasm::arch::vae_tensors(&cfg);
    let w = GpuWeights::from_values(&gpu, &planned, |p| get(&t, &p.name)).unwrap();
    let vae = Vae::load(&gpu, cfg, w).unwrap();
    let io = tensors(VAE_IO);
    let plan = vae.plan(&gpu, 8, 8).unwrap();
    let img = plan.decode(&gpu, &get(&io, "latent")).await.unwrap();
    check("VAE small 8x8 -> 16x16", &img, &get(&io, "image"), 1e-3);
}

#[wasm_bindgen_test]
async fn tiny_generate_is_deterministic() {
    let gpu = gpu().await;
    let dit = dit_fixture(&gpu).await;
    let mut req = SampleRequest::new(vec![3, 1000]);
    req.steps = Spacing::Even(6);
    req.sampler = SamplerKind::DpmSolverPp2m;
    req.cfg_channels = CfgChannels::Official;
    req.seed = 9;
    let a = sample(&gpu, &dit, &req, |_| true).await.unwrap();
    let b = sample(&gpu, &dit, &req, |_| true).await.unwrap();
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(a, b);
    // The noise stream is platform-independent: the same values as natively (pinned in src/diffusion/rng.rs).
    assert_eq!(NoiseRng::new(0).normals(3), [-0.45275775f32, 0.20776604, 2.650606]);
}
