//! Full-size DiT-XL/2 at 256 px with random weights: the forward runs and stays finite. Ignored by default (about a
//! minute and 3 GB of memory on lavapipe); run with `cargo test --release --test full_size -- --ignored`, or see
//! `dit bench --preset XL/2 --random-weights`.

mod common;

use dit_wasm::model::dit_tensors;
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
