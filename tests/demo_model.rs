//! The embedded demo models really generate, classified by a softmax regression on pixels fitted on real held-out
//! test images (never seen in training; tests/fixtures/fashion_test_1000.safetensors, made by tools/make_demo_eval.py):
//! the DiT demo's 10 images per class from the Rust sampler (DPM-Solver++(2M), 20 steps, guidance 4) at least 80%
//! and higher with guidance than without; the flow-map demo's at 1 and 2 steps (guidance 1: trained in) at least 90%,
//! beside the DiT demo's with 50 guided DDIM steps in the same run.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use dit_wasm::arch::{DitConfig, VaeConfig};
use dit_wasm::diffusion::{SamplerKind, Spacing};
use dit_wasm::model::{Dit, Vae};
use dit_wasm::pipeline::{decode, decode_with, sample, to_vae_latents, warm_up, SampleRequest};
use dit_wasm::weights::DirSource;
use dit_wasm::{Gpu, GpuOptions};
use std::path::Path;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Softmax regression on 28x28 pixels in [0, 1], fitted on 9,000 real held-out test images by
/// tools/make_demo_eval.py, with the 1,000 other held-out images to check it on.
struct Classifier {
    weight: Vec<f32>,
    bias: Vec<f32>,
    images: Vec<Vec<f32>>,
    labels: Vec<u8>,
}

impl Classifier {
    fn load() -> Classifier {
        let bytes = std::fs::read(repo("tests/fixtures/fashion_test_1000.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let f32s = |name: &str| -> Vec<f32> {
            let t = st.tensor(name).unwrap();
            t.data().chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        let images = st
            .tensor("images")
            .unwrap()
            .data()
            .chunks(28 * 28)
            .map(|c| c.iter().map(|&v| v as f32 / 255.0).collect())
            .collect();
        let labels = st.tensor("labels").unwrap().data().to_vec();
        Classifier { weight: f32s("weight"), bias: f32s("bias"), images, labels }
    }

    fn classify(&self, x: &[f32]) -> u8 {
        let score = |c: usize| {
            self.bias[c] + self.weight[c * 784..(c + 1) * 784].iter().zip(x).map(|(w, v)| w * v).sum::<f32>()
        };
        (0..10).max_by(|&a, &b| score(a).total_cmp(&score(b))).unwrap() as u8
    }
}

/// Generated images [N, 3, 32, 32] in about [-1, 1] -> 28x28 gray in [0, 1] (the 2-pixel padding cropped).
fn to_gray28(images: &[f32], i: usize) -> Vec<f32> {
    let img = &images[i * 3 * 32 * 32..(i + 1) * 3 * 32 * 32];
    let mut out = Vec::with_capacity(28 * 28);
    for y in 2..30 {
        for x in 2..30 {
            let v = (0..3).map(|c| img[c * 1024 + y * 32 + x]).sum::<f32>() / 3.0;
            out.push(((v + 1.0) / 2.0).clamp(0.0, 1.0));
        }
    }
    out
}

/// The demo model's DiT and VAE (and its class names), loaded from models/demo.
fn load_demo(gpu: &Gpu) -> (Dit, Vae, Vec<String>) {
    load_demo_model(gpu, "models/demo/dit")
}

/// A demo network (`dir`: models/demo/dit, the DiT; models/demo/flowmap, the flow map) with the demo VAE.
fn load_demo_model(gpu: &Gpu, dir: &str) -> (Dit, Vae, Vec<String>) {
    let (di, dw) = pollster::block_on(dit_wasm::loader::from_dir(gpu, &DirSource(repo(dir))))
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    let (vi, vw) = pollster::block_on(dit_wasm::loader::from_dir(gpu, &DirSource(repo("models/demo/vae"))))
        .expect("models/demo/vae");
    let dcfg: DitConfig = serde_json::from_value(di.metadata.config).unwrap();
    let vcfg: VaeConfig = serde_json::from_value(vi.metadata.config).unwrap();
    assert_eq!(dcfg.num_classes, 10);
    let names: Vec<String> = serde_json::from_value(di.metadata.extra["class_names"].clone()).unwrap();
    (Dit::load(gpu, dcfg, dw).unwrap(), Vae::load(gpu, vcfg, vw).unwrap(), names)
}

/// Samples `req`'s classes (10 of each), decodes them and classifies them: the accuracy and each class's count.
fn accuracy(gpu: &Gpu, dit: &Dit, vae: &Vae, clf: &Classifier, req: &SampleRequest) -> (f64, [usize; 10], f64) {
    let latent = dit.cfg.input_size;
    let n = req.classes.len();
    let t0 = std::time::Instant::now();
    let z = pollster::block_on(sample(gpu, dit, req, |_| true)).unwrap();
    let z = to_vae_latents(&dit.cfg, vae.cfg.scaling_factor, &z);
    let images = pollster::block_on(decode(gpu, vae, &z, n, latent, latent)).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let mut per_class = [0usize; 10];
    for (i, &c) in req.classes.iter().enumerate() {
        if clf.classify(&to_gray28(&images, i)) as u32 == c {
            per_class[c as usize] += 1;
        }
    }
    (per_class.iter().sum::<usize>() as f64 / n as f64, per_class, secs)
}

fn report(what: &str, names: &[String], (acc, per_class, secs): (f64, [usize; 10], f64), per: usize) {
    println!(
        "{what}: accuracy {:.1}% ({} images in {secs:.1} s); per class: {}",
        100.0 * acc,
        per * 10,
        names.iter().zip(per_class).map(|(n, k)| format!("{n} {k}/{per}")).collect::<Vec<_>>().join(", ")
    );
}

/// `per` images of each of the ten classes, in class order.
fn ten_classes(per: usize) -> Vec<u32> {
    (0..10u32).flat_map(|c| std::iter::repeat_n(c, per)).collect()
}

#[test]
fn demo_model_generates_recognisable_classes() {
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::default())).unwrap();
    let (dit, vae, names) = load_demo(&gpu);
    let clf = Classifier::load();
    let real = (0..clf.images.len()).filter(|&i| clf.classify(&clf.images[i]) == clf.labels[i]).count();
    println!("classifier on 1,000 real held-out images: {:.1}%", 100.0 * real as f64 / clf.images.len() as f64);

    let mut accuracy_at = vec![];
    for cfg_scale in [4.0f32, 1.0] {
        let mut req = SampleRequest::new(ten_classes(10));
        req.cfg_scale = cfg_scale;
        req.steps = Spacing::Even(20);
        req.sampler = SamplerKind::DpmSolverPp2m;
        req.seed = 0;
        let r = accuracy(&gpu, &dit, &vae, &clf, &req);
        report(&format!("guidance {cfg_scale}"), &names, r, 10);
        accuracy_at.push(r.0);
    }
    assert!(accuracy_at[0] >= 0.8, "guided accuracy {} < 80%", accuracy_at[0]);
    assert!(accuracy_at[0] > accuracy_at[1], "guidance must help: {} vs {}", accuracy_at[0], accuracy_at[1]);
}

/// The flow-map demo in one and two network calls an image, and the DiT demo with the page's former default (50
/// guided DDIM steps: 100 calls) beside it, on the same 200 classes and seed.
#[test]
fn flow_map_demo_generates_recognisable_classes_in_one_and_two_steps() {
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::default())).unwrap();
    let clf = Classifier::load();
    let (flow, vae, names) = load_demo_model(&gpu, "models/demo/flowmap");
    assert_eq!(flow.cfg.arch, dit_wasm::arch::Family::Meanflow);
    let per = 20;
    let mut req = SampleRequest::new(ten_classes(per));
    req.sampler = SamplerKind::FlowMap;
    req.cfg_scale = 1.0;
    req.seed = 0;
    let mut flow_acc = vec![];
    for steps in [1, 2] {
        req.steps = Spacing::Even(steps);
        let r = accuracy(&gpu, &flow, &vae, &clf, &req);
        report(&format!("flow-map demo, {steps} step(s), guidance 1"), &names, r, per);
        flow_acc.push(r.0);
    }
    let (dit, vae, _) = load_demo(&gpu);
    let mut req = SampleRequest::new(ten_classes(per));
    req.sampler = SamplerKind::Ddim;
    req.steps = Spacing::Even(50);
    req.seed = 0;
    report("DiT demo, 50 DDIM steps, guidance 4", &names, accuracy(&gpu, &dit, &vae, &clf, &req), per);
    assert!(flow_acc.iter().all(|&a| a >= 0.9), "flow-map demo accuracy at 1 and 2 steps: {flow_acc:?}, under 90%");
}

/// What the page's load runs (`pipeline::warm_up`: a guided forward and a decode) compiles every pipeline an image
/// needs: the first image adds at most the sampler's step. Each pipeline is counted once, with its creation time.
#[test]
fn load_compiles_what_an_image_runs() {
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::default())).unwrap();
    let (dit, vae, _) = load_demo(&gpu);
    let latent = dit.cfg.input_size;
    let plan = vae.plan(&gpu, latent, latent).unwrap();
    pollster::block_on(warm_up(&gpu, &dit, &plan, None)).unwrap();
    let loaded = gpu.pipeline_stats();
    println!("at load: {} pipelines, {:.0} ms creating them: {:?}", loaded.count, loaded.compile_ms, loaded.kernels);
    assert!(loaded.count > 0);
    assert_eq!(loaded.kernels.values().sum::<usize>(), loaded.count);
    assert_eq!(loaded.kernels.keys().collect::<Vec<_>>(), loaded.kernel_ms.keys().collect::<Vec<_>>());
    let per_kernel: f64 = loaded.kernel_ms.values().sum();
    assert!(
        (per_kernel - loaded.compile_ms).abs() <= 1e-6 * loaded.compile_ms.max(1.0),
        "{per_kernel} vs {}",
        loaded.compile_ms
    );
    // One pipeline per entry point where a uniform picks the variant: group norm's statistics and apply passes
    // (SiLU or not), the conv's one entry (with or without the fused upsample).
    assert_eq!(loaded.kernels.get("groupnorm"), Some(&2), "{:?}", loaded.kernels);
    assert_eq!(loaded.kernels.get("conv"), Some(&1), "{:?}", loaded.kernels);

    let mut req = SampleRequest::new(vec![3]);
    req.steps = Spacing::Even(3);
    req.sampler = SamplerKind::Ddim;
    let z = pollster::block_on(sample(&gpu, &dit, &req, |_| true)).unwrap();
    let image = pollster::block_on(decode_with(&gpu, &plan, &z, 1)).unwrap();
    assert!(image.iter().all(|v| v.is_finite()));
    let after = gpu.pipeline_stats();
    let added: Vec<_> =
        after.kernels.iter().filter(|(k, n)| loaded.kernels.get(*k) != Some(n)).map(|(k, _)| k.clone()).collect();
    println!("the first image added {} pipelines: {added:?}", after.count - loaded.count);
    assert!(after.count <= loaded.count + 1 && added.iter().all(|k| k == "sampler"), "added {added:?}");
}
