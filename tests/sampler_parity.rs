//! Sampler parity with fixed noise against the reference of tools/make_sampler_fixtures.py (the release's DDPM and
//! DDIM formulas in float64, diffusers' DPMSolverMultistepScheduler), on the DiT fixture dit_p2_hd64 with guidance:
//! official (channels 0..2) and all-channel.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{check, gpus, label};
use dit_wasm::diffusion::{CfgChannels, SamplerKind, Spacing};
use dit_wasm::pipeline::{sample, SampleRequest};
use dit_wasm::weights::convert::{convert, ConvertOptions};
use dit_wasm::weights::DirSource;
use dit_wasm::{Dit, DitConfig};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn parity(case: &str) {
    let bytes = std::fs::read(fixture(&format!("sampler_{case}.safetensors"))).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let desc: serde_json::Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["case"]).unwrap();
    let noise: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("noise").unwrap().data());
    let labels: Vec<u32> = bytemuck::pod_collect_to_vec::<u8, i32>(st.tensor("labels").unwrap().data())
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let want: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("out").unwrap().data());

    let dir = tempfile::tempdir().unwrap();
    let opts = ConvertOptions { heads: Some(2), ..Default::default() };
    convert(&[fixture("dit_p2_hd64.safetensors")], dir.path(), &opts).unwrap();
    let req = SampleRequest {
        blend: None,
        classes: labels,
        cfg_scale: desc["cfg"].as_str().unwrap().parse().unwrap(),
        steps: Spacing::parse(desc["steps"].as_str().unwrap()).unwrap(),
        sampler: SamplerKind::parse(desc["sampler"].as_str().unwrap()).unwrap(),
        cfg_channels: CfgChannels::parse(desc["cfg_channels"].as_str().unwrap()).unwrap(),
        seed: 0,
        noise: Some(noise),
        latent_size: None,
        flow_map: Default::default(),
    };
    for gpu in gpus() {
        let (index, w) =
            pollster::block_on(dit_wasm::loader::from_dir(&gpu, &DirSource(dir.path().to_path_buf()))).unwrap();
        let cfg: DitConfig = serde_json::from_value(index.metadata.config).unwrap();
        let dit = Dit::load(&gpu, cfg, w).unwrap();
        let mut steps = 0;
        let got = pollster::block_on(sample(&gpu, &dit, &req, |s| {
            steps = s.step;
            true
        }))
        .unwrap();
        assert_eq!(steps, req.steps.timesteps().unwrap().len());
        check(&format!("{} {case} {desc}: final latent", label(&gpu)), &got, &want, 1e-3);
    }
}

#[test]
fn ddpm_learned_variance_official_guidance() {
    parity("ddpm");
}

#[test]
fn ddim_all_channel_guidance() {
    parity("ddim_all");
}

#[test]
fn dpm_solver_pp_2m_matches_diffusers() {
    parity("dpmpp2m");
}
