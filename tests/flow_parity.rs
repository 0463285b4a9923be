//! SiT flow samplers: `dit sample --sampler euler|heun|euler-maruyama` on a `.pt` in the SiT release's layout (the
//! DiT fixture dit_p2_hd64's random non-zero weights) converted with `dit convert --arch sit`, fixed noise, against
//! the ODE written here from SiT's formulas: the network evaluated separately (the DiT forward, parity-tested against
//! the reference network, run on [x; x] with labels [y; 1000] at the float time t in [0, 1]), guidance on velocity
//! channels 0..2 (channel 3 the conditional half's own), and the updates in f64 on the CPU over the uniform grid
//! t_i = i / K:
//!   Euler: x <- x + (1/K) v(x, i/K)
//!   Heun:  x~ = x + (1/K) v(x, i/K);  x <- x + (1/2K) (v(x, i/K) + v(x~, (i+1)/K))
//!   Euler-Maruyama (SiT's `sample_sde` defaults: diffusion form "sigma" D(t) = 1 - t, last step "Mean" 0.04):
//!     score = (alpha/d_alpha v - x) / (sigma^2 - alpha/d_alpha d_sigma sigma) with alpha = t, sigma = 1 - t,
//!     drift = v + D score; over t = linspace(0, 0.96, K): x <- x + dt drift + sqrt(2 D) sqrt(dt) z_{i+1} for the
//!     first K - 1 points, then x <- x + 0.04 drift(x, 0.96).
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{check, dit, fails_with, fixture, gpus, random};
use dit_wasm::weights::DirSource;
use dit_wasm::{Dit, DitConfig};
use std::path::{Path, PathBuf};

const LATENT: usize = 8;
const C: usize = 4;
const CLASSES: [u32; 2] = [3, 417];
const NULL: u32 = 1000;

/// The release's file layout (a torch.save'd f32 state dict, tests/fixtures/hub/SiT-collections: the sampler-parity
/// network dit_p2_hd64) converted with `dit convert FILE.pt --arch sit` into `tmp/sit`, and fixed noise [STEPS_MAX + 1, N, C, 8, 8] in `tmp/n.npy`
/// (the starting latent, then the noise of each step); the ODE samplers get only the starting latent.
fn prepared(steps: usize) -> (tempfile::TempDir, PathBuf, Vec<f32>) {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("sit");
    let pt = fixture("hub/SiT-collections/SiT-tiny-2-64.pt");
    let args = ["convert", pt.to_str().unwrap(), "--out", model.to_str().unwrap(), "--arch", "sit", "--heads", "2"];
    let o = dit(&args);
    assert!(o.ok, "dit {}: {}", args.join(" "), o.stderr);
    let n = CLASSES.len();
    let noise: Vec<f32> = random(22, (steps + 1) * n * C * LATENT * LATENT, 1.7);
    dit_wasm::npy::write_f32(&tmp.path().join("n.npy"), &[steps + 1, n, C, LATENT, LATENT], &noise).unwrap();
    (tmp, model, noise)
}

/// `dit sample` with the flow sampler: the final latents [N, C, 8, 8].
fn sampled(tmp: &Path, model: &Path, sampler: &str, steps: usize, cfg: f32) -> Vec<f32> {
    let z = tmp.join(format!("z_{sampler}.npy"));
    let out = tmp.join(format!("o_{sampler}.npy"));
    let mut args: Vec<String> = ["sample", "--model", model.to_str().unwrap(), "--sampler", sampler, "--steps"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend([steps.to_string(), "--cfg".into(), cfg.to_string()]);
    for c in CLASSES {
        args.extend(["--class".into(), c.to_string()]);
    }
    args.extend(["--noise".into(), tmp.join("n.npy").to_str().unwrap().into()]);
    args.extend(["--latent-out".into(), z.to_str().unwrap().into(), "--out".into(), out.to_str().unwrap().into()]);
    args.push("--quiet".into());
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = dit(&argv);
    assert!(o.ok, "dit {}: {}", argv.join(" "), o.stderr);
    dit_wasm::npy::read_f32(&z).unwrap().data
}

/// The reference: the network through the DiT forward on [x; x], guidance and the ODE updates in f64.
fn reference(model: &Path, sampler: &str, steps: usize, scale: f64, noise: &[f32]) -> Vec<f32> {
    let gpu = gpus().remove(0);
    let (index, w) = pollster::block_on(dit_wasm::loader::from_dir(&gpu, &DirSource(model.to_path_buf()))).unwrap();
    let cfg: DitConfig = serde_json::from_value(index.metadata.config).unwrap();
    assert_eq!(cfg.arch, dit_wasm::arch::Family::Sit, "the index records the kind");
    let cout = cfg.out_channels();
    let dit_model = Dit::load(&gpu, cfg, w).unwrap();
    let n = CLASSES.len();
    let plan = dit_model.plan(&gpu, 2 * n, LATENT).unwrap();
    let hw = LATENT * LATENT;
    let per = n * C * hw;
    let labels: Vec<u32> = CLASSES.iter().copied().chain(std::iter::repeat_n(NULL, n)).collect();
    // The guided velocity at (x, t): channels 0..2 guided, channel 3 the conditional half's.
    let velocity = |x: &[f64], t: f64| -> Vec<f64> {
        let xf: Vec<f32> = x.iter().chain(x.iter()).map(|&v| v as f32).collect();
        let out = pollster::block_on(plan.forward(&gpu, &xf, &vec![t as f32; 2 * n], &labels)).unwrap();
        let mut v = vec![0f64; per];
        for s in 0..n {
            for ch in 0..C {
                for p in 0..hw {
                    let cond = out[(s * cout + ch) * hw + p] as f64;
                    let uncond = out[((n + s) * cout + ch) * hw + p] as f64;
                    v[(s * C + ch) * hw + p] = if ch < 3 { uncond + scale * (cond - uncond) } else { cond };
                }
            }
        }
        v
    };
    let h = 1.0 / steps as f64;
    let mut x: Vec<f64> = noise[..per].iter().map(|&v| v as f64).collect();
    if sampler == "euler-maruyama" {
        let t1 = 1.0 - 0.04;
        let drift = |x: &[f64], t: f64| -> Vec<f64> {
            let v = velocity(x, t);
            let (alpha, d_alpha, sigma, d_sigma) = (t, 1.0, 1.0 - t, -1.0);
            let ratio = alpha / d_alpha;
            let var = sigma * sigma - ratio * d_sigma * sigma;
            let diffusion = 1.0 - t;
            v.iter().zip(x).map(|(v, x)| v + diffusion * (ratio * v - x) / var).collect()
        };
        let dt = t1 / (steps - 1) as f64;
        for i in 0..steps - 1 {
            let t = i as f64 * dt;
            let d = drift(&x, t);
            let z = &noise[(i + 1) * per..(i + 2) * per];
            let amp = (2.0 * (1.0 - t)).sqrt() * dt.sqrt();
            x.iter_mut().zip(d.iter().zip(z)).for_each(|(x, (d, &z))| *x += dt * d + amp * z as f64);
        }
        let d = drift(&x, t1);
        x.iter_mut().zip(&d).for_each(|(x, d)| *x += 0.04 * d);
        return x.into_iter().map(|v| v as f32).collect();
    }
    for i in 0..steps {
        let t = i as f64 * h;
        let v1 = velocity(&x, t);
        match sampler {
            "euler" => x.iter_mut().zip(&v1).for_each(|(x, v)| *x += h * v),
            "heun" => {
                let pred: Vec<f64> = x.iter().zip(&v1).map(|(x, v)| x + h * v).collect();
                let v2 = velocity(&pred, t + h);
                x.iter_mut().zip(v1.iter().zip(&v2)).for_each(|(x, (a, b))| *x += 0.5 * h * (a + b));
            }
            _ => unreachable!(),
        }
    }
    x.into_iter().map(|v| v as f32).collect()
}

fn parity(sampler: &str, steps: usize, cfg: f32) {
    let (tmp, model, noise) = prepared(steps);
    let got = sampled(tmp.path(), &model, sampler, steps, cfg);
    let want = reference(&model, sampler, steps, cfg as f64, &noise);
    let moved = common::max_diff(&want, &noise[..want.len()]);
    println!("{sampler}: the reference moved max {moved:.3e} from the noise");
    assert!(moved > 0.1, "the velocity is too small for the test to see a wrong step");
    check(&format!("SiT {sampler} K={steps} cfg={cfg}: final latent"), &got, &want, 1e-3);
}

#[test]
fn euler_ode_matches_the_reference() {
    parity("euler", 5, 4.0);
}

#[test]
fn heun_ode_matches_the_reference() {
    parity("heun", 4, 1.5);
}

#[test]
fn euler_maruyama_sde_matches_the_reference() {
    parity("euler-maruyama", 6, 4.0);
}

#[test]
fn the_sampler_must_fit_the_model_kind() {
    let (tmp, model, _) = prepared(1);
    let out = tmp.path().join("o.npy");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    fails_with(&["sample", "--model", m, "--sampler", "ddpm", "--steps", "4", "--class", "1", "--out", o], "euler");
    let dit_file = format!("{}#heads=2", fixture("dit_p2_hd64.safetensors").display());
    fails_with(
        &["sample", "--model", &dit_file, "--sampler", "euler", "--steps", "4", "--class", "1", "--out", o],
        "ddpm",
    );
    fails_with(&["sample", "--model", &dit_file, "--sampler", "dopri5", "--class", "1", "--out", o], "ddpm");
    // The kind shows in `dit info`, for the directory and for a single file with #arch=sit.
    let info = dit(&["info", m]);
    assert!(info.ok && info.stdout.contains("model:       sit"), "{}", info.stdout);
    let sit_file = format!("{}#heads=2&arch=sit", fixture("dit_p2_hd64.safetensors").display());
    let info = dit(&["info", &sit_file]);
    assert!(info.ok && info.stdout.contains("model:       sit"), "{}{}", info.stdout, info.stderr);
    let info = dit(&["info", &dit_file]);
    assert!(info.ok && info.stdout.contains("model:       dit"), "{}{}", info.stdout, info.stderr);
}

/// A fixture of tools/make_flow_fixtures.py: its tensors as f64 and its JSON description.
fn flow_fixture(name: &str) -> (std::collections::HashMap<String, Vec<f64>>, serde_json::Value) {
    let bytes = std::fs::read(fixture(&format!("flow_{name}.safetensors"))).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let desc = serde_json::from_str(&meta.metadata().as_ref().unwrap()["case"]).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            let values: Vec<f64> = match v.dtype() {
                safetensors::Dtype::F64 => bytemuck::pod_collect_to_vec(v.data()),
                safetensors::Dtype::F32 => {
                    bytemuck::pod_collect_to_vec::<u8, f32>(v.data()).into_iter().map(f64::from).collect()
                }
                _ => bytemuck::pod_collect_to_vec::<u8, i32>(v.data()).into_iter().map(f64::from).collect(),
            };
            (k, values)
        })
        .collect();
    (tensors, desc)
}

/// The solver alone against torchdiffeq's dopri5 on an ODE whose steps get rejected and resized: the same number of
/// evaluations (so the same accepted and rejected steps) and the same end value.
#[test]
fn dopri5_steps_as_torchdiffeq() {
    use dit_wasm::diffusion::dopri5::{Dopri5, SIT_ATOL, SIT_RTOL};
    let (t, desc) = flow_fixture("dopri5_controller");
    let k: Vec<f64> = (0..64).map(|i| 0.5 + (40.0 - 0.5) * i as f64 / 63.0).collect();
    let mut calls = 0;
    let mut drift = async |t: f64, y: &[f64]| -> dit_wasm::Result<Vec<f64>> {
        calls += 1;
        Ok(y.iter().zip(&k).map(|(y, k)| -k * (1.0 + (20.0 * t).sin()) * y + (3.0 * t).cos()).collect())
    };
    let (got, s) = pollster::block_on(async {
        let mut s = Dopri5::start(0.0, t["y0"].clone(), SIT_ATOL, SIT_RTOL, &mut drift).await.unwrap();
        let y = s.solve_to(1.0, &mut drift, |_| true).await.unwrap();
        (y, (s.accepted, s.rejected, s.evaluations))
    });
    let want = &t["out"];
    let diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!(
        "dopri5 step control: {} accepted, {} rejected, {} evaluations (torchdiffeq {}); max diff {diff:.3e}",
        s.0, s.1, s.2, desc["evaluations"]
    );
    assert!(s.1 > 0, "the case must exercise rejected steps");
    assert_eq!(s.2 as u64, desc["evaluations"].as_u64().unwrap(), "evaluations differ from torchdiffeq's");
    assert!(diff < 1e-9, "max diff {diff:.3e}");
}

/// `dit sample --sampler dopri5` (the library's run, to count its steps) on dit_p2_hd64 converted as a SiT, against
/// torchdiffeq's dopri5 over diffusers' network with SiT's guidance (tools/make_flow_fixtures.py).
fn dopri5_parity(case: &str) {
    use dit_wasm::diffusion::{CfgChannels, SamplerKind, Spacing};
    use dit_wasm::pipeline::{sample, SampleRequest};
    let (t, desc) = flow_fixture(case);
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("sit");
    common::convert_p2_hd64(&model, &["--arch", "sit"]);
    let req = SampleRequest {
        blend: None,
        classes: t["labels"].iter().map(|&v| v as u32).collect(),
        cfg_scale: desc["cfg"].as_str().unwrap().parse().unwrap(),
        steps: Spacing::Even(50),
        sampler: SamplerKind::Dopri5,
        cfg_channels: CfgChannels::parse(desc["cfg_channels"].as_str().unwrap()).unwrap(),
        seed: 0,
        noise: Some(t["noise"].iter().map(|&v| v as f32).collect()),
        latent_size: None,
        flow_map: Default::default(),
    };
    let want: Vec<f32> = t["out"].iter().map(|&v| v as f32).collect();
    for gpu in gpus() {
        let (index, w) = pollster::block_on(dit_wasm::loader::from_dir(&gpu, &DirSource(model.clone()))).unwrap();
        let cfg: DitConfig = serde_json::from_value(index.metadata.config).unwrap();
        let dit_model = Dit::load(&gpu, cfg, w).unwrap();
        let mut last = None;
        let got = pollster::block_on(sample(&gpu, &dit_model, &req, |s| {
            last = Some(s.clone());
            true
        }))
        .unwrap();
        let last = last.unwrap();
        assert_eq!(last.step, last.total, "the last step event says the run is complete");
        let evaluations = 2 + 6 * last.step;
        println!("dopri5 {case}: {} steps, {evaluations} evaluations (torchdiffeq {})", last.step, desc["evaluations"]);
        assert_eq!(evaluations as u64, desc["evaluations"].as_u64().unwrap(), "a different step sequence");
        check(&format!("{} dopri5 {desc}: final latent", common::label(&gpu)), &got, &want, 1e-3);
    }
}

#[test]
fn dopri5_matches_torchdiffeq_official_guidance() {
    dopri5_parity("dopri5");
}

#[test]
fn dopri5_matches_torchdiffeq_all_channel_guidance() {
    dopri5_parity("dopri5_all");
}
