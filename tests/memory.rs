//! Memory under repeated use: after warm-up, generating more images must not leave GPU buffers or textures behind.
//! The device's live counts (every buffer and texture made through `Gpu`, with bytes) after 20 generations of the
//! demo model must equal those after 2. The long runs (1,000 forwards, with the process's resident memory) are
//! `dit bench --memory`; their figures are in the README.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

use dit_wasm::arch::{DitConfig, VaeConfig};
use dit_wasm::diffusion::{SamplerKind, Spacing};
use dit_wasm::gpu::LiveCounts;
use dit_wasm::model::{Dit, Vae};
use dit_wasm::pipeline::{decode, sample, SampleRequest};
use dit_wasm::weights::DirSource;
use dit_wasm::{Gpu, GpuOptions};
use std::path::Path;

fn demo(gpu: &Gpu) -> (Dit, Vae) {
    let dir = |p: &str| DirSource(Path::new(env!("CARGO_MANIFEST_DIR")).join(p));
    let (di, dw) = pollster::block_on(dit_wasm::loader::from_dir(gpu, &dir("models/demo/dit"))).unwrap();
    let (vi, vw) = pollster::block_on(dit_wasm::loader::from_dir(gpu, &dir("models/demo/vae"))).unwrap();
    let dcfg: DitConfig = serde_json::from_value(di.metadata.config).unwrap();
    let vcfg: VaeConfig = serde_json::from_value(vi.metadata.config).unwrap();
    (Dit::load(gpu, dcfg, dw).unwrap(), Vae::load(gpu, vcfg, vw).unwrap())
}

#[test]
fn generating_again_leaves_no_gpu_memory_behind() {
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::default())).unwrap();
    let (dit, vae) = demo(&gpu);
    let latent = dit.cfg.input_size;
    let loaded = gpu.live();
    // Each generation differs (class, seed, sampler), as a page's would; a guided batch of two images.
    let samplers = [SamplerKind::Ddim, SamplerKind::Ddpm, SamplerKind::DpmSolverPp2m];
    let generate = |i: usize| {
        let mut req = SampleRequest::new(vec![i as u32 % 10, (i as u32 + 3) % 10]);
        req.steps = Spacing::Even(3);
        req.sampler = samplers[i % samplers.len()];
        req.seed = i as u64;
        let z = pollster::block_on(sample(&gpu, &dit, &req, |_| true)).unwrap();
        let images = pollster::block_on(decode(&gpu, &vae, &z, 2, latent, latent)).unwrap();
        assert!(images.iter().all(|v| v.is_finite()));
    };
    let mut after: Vec<LiveCounts> = vec![];
    for i in 0..20 {
        generate(i);
        after.push(gpu.live());
    }
    println!("loaded: {loaded:?}");
    println!("after 2 generations: {:?}", after[1]);
    println!("after 20 generations: {:?}", after[19]);
    assert!(loaded.buffers > 0 && loaded.buffer_bytes > 0, "the models' weights are counted: {loaded:?}");
    assert_eq!(after[19], after[1], "live GPU buffers/textures grew between generation 2 and 20");
}
