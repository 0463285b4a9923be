//! Flow maps (MeanFlow / α-Flow and Decoupled MeanFlow): `dit convert` of the release layouts and `dit sample --sampler
//! flowmap`, against the final latents of the reference in tools/make_flowmap_fixtures.py (tests/fixtures/flowmap):
//! tiny networks with random non-zero weights everywhere (adaLN and output layers included), written from the upstream
//! formulas in float64 (MeanFlow c = E1(t) + E2(t - r) + Y(y); DMF c_t for the blocks before the split, c_r for the
//! rest and the final layer; q/k RMSNorm; plain, consistency, guided and shifted grids), fixed noise, labels with the
//! null class. Also the self-checks of the flow-map facts, the decoded image's latent space, and the errors.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{check, dit, fails_with, fixture, gpus};
use dit_wasm::arch::{dit_tensors, DitConfig, Family};
use dit_wasm::weights::DirSource;
use std::path::{Path, PathBuf};

const LATENT: usize = 8;

/// The reference's cases: `<case>.noise`, `<case>.out` (and `.vae`), with the labels and settings in the metadata.
struct Cases {
    tensors: std::collections::HashMap<String, Vec<f32>>,
    desc: serde_json::Value,
}

fn cases() -> Cases {
    let bytes = std::fs::read(fixture("flowmap/cases.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let desc: serde_json::Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["desc"]).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors = st.tensors().into_iter().map(|(n, t)| (n, bytemuck::pod_collect_to_vec(t.data()))).collect();
    Cases { tensors, desc }
}

/// `dit convert` of a fixture into `tmp/<name>`, with `extra` arguments.
fn convert(tmp: &Path, file: &str, extra: &[&str]) -> PathBuf {
    let out = tmp.join(file.trim_end_matches(".pt"));
    let input = fixture(&format!("flowmap/{file}"));
    let mut args = vec!["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--heads", "2"];
    args.extend(extra);
    let o = dit(&args);
    assert!(o.ok, "dit {}: {}", args.join(" "), o.stderr);
    out
}

fn meanflow(tmp: &Path) -> PathBuf {
    convert(tmp, "meanflow.pt", &["--arch", "meanflow"])
}

fn dmf(tmp: &Path, file: &str) -> PathBuf {
    convert(tmp, file, &["--arch", "dmf", "--dmf-depth", "2"])
}

/// `dit sample` of `case` (its noise, labels and settings) with `extra` arguments: the final latents.
fn sampled(tmp: &Path, model: &Path, c: &Cases, case: &str, extra: &[&str]) -> Vec<f32> {
    let d = &c.desc["cases"][case];
    let noise = &c.tensors[&format!("{case}.noise")];
    let n = c.desc["labels"].as_array().unwrap().len();
    let k = d["steps"].as_u64().unwrap() as usize;
    let noise_file = tmp.join(format!("{case}.noise.npy"));
    dit_wasm::npy::write_f32(&noise_file, &[k + 1, n, 4, LATENT, LATENT], noise).unwrap();
    let (z, out) = (tmp.join(format!("{case}.z.npy")), tmp.join(format!("{case}.o.npy")));
    let mut args: Vec<String> = vec!["sample".into(), "--model".into(), model.to_str().unwrap().into()];
    for l in c.desc["labels"].as_array().unwrap() {
        args.extend(["--class".into(), l.to_string()]);
    }
    args.extend(["--noise".into(), noise_file.to_str().unwrap().into()]);
    args.extend(["--latent-out".into(), z.to_str().unwrap().into(), "--out".into(), out.to_str().unwrap().into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--quiet".into());
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = dit(&argv);
    assert!(o.ok, "dit {}: {}", argv.join(" "), o.stderr);
    dit_wasm::npy::read_f32(&z).unwrap().data
}

fn parity(model: &Path, tmp: &Path, c: &Cases, case: &str, extra: &[&str]) {
    let got = sampled(tmp, model, c, case, extra);
    let want = &c.tensors[&format!("{case}.out")];
    check(&format!("{case} (dit sample {}): final latent", extra.join(" ")), &got, want, 1e-3);
}

#[test]
fn meanflow_matches_the_reference() {
    let (c, tmp) = (cases(), tempfile::tempdir().unwrap());
    let model = meanflow(tmp.path());
    // The default sampler of a flow map is flowmap, one step, guidance 1.
    parity(&model, tmp.path(), &c, "meanflow_1", &[]);
    parity(&model, tmp.path(), &c, "meanflow_2", &["--sampler", "flowmap", "--steps", "2"]);
    parity(&model, tmp.path(), &c, "meanflow_2c", &["--consistency", "--grid", "1,0.55,0"]);
    // A scale above 1 guides all channels inside the trained interval only (MeanFlow's default: t <= 0.75).
    parity(&model, tmp.path(), &c, "meanflow_3g", &["--steps", "3", "--cfg", "2"]);
}

#[test]
fn dmf_matches_the_reference() {
    let (c, tmp) = (cases(), tempfile::tempdir().unwrap());
    let model = dmf(tmp.path(), "dmf.pt");
    for (case, steps) in [("dmf_1", "1"), ("dmf_2", "2"), ("dmf_4", "4")] {
        parity(&model, tmp.path(), &c, case, &["--steps", steps]);
    }
    parity(&model, tmp.path(), &c, "dmf_4g", &["--steps", "4", "--cfg", "1.5", "--guidance-interval", "0,0.7"]);
    // The 512 px model's q/k RMSNorm and time shift.
    let qk = dmf(tmp.path(), "dmf_qk.pt");
    let info = dit(&["info", qk.to_str().unwrap()]);
    assert!(info.stdout.contains("\"qk_norm\":true") && info.stdout.contains("dmf depth:   2"), "{}", info.stdout);
    parity(&qk, tmp.path(), &c, "dmf_qk_2s", &["--steps", "2", "--shift", "1.5"]);
}

/// The decoded image: MeanFlow's per-element latent statistics, DMF the VAE's scaling factor. `dit sample --out .npy`
/// against the same VAE decoding the reference's VAE latent (MeanFlow: x * sqrt(var + 1e-16) + mean; DMF: the latent
/// as it is, which the VAE divides by its scaling factor).
#[test]
fn the_decoded_image_uses_the_models_latent_space() {
    let (c, tmp) = (cases(), tempfile::tempdir().unwrap());
    let vae_dir = fixture("vae_small");
    let gpu = gpus().remove(0);
    let origin = dit_wasm::loader::Origin::new();
    let vae = pollster::block_on(dit_wasm::loader::vae(&origin, &gpu, &vae_dir.display().to_string(), None)).unwrap();
    let n = c.desc["labels"].as_array().unwrap().len();
    for (model, case) in [(meanflow(tmp.path()), "meanflow_2"), (dmf(tmp.path(), "dmf.pt"), "dmf_2")] {
        let out = tmp.path().join(format!("{case}.img.npy"));
        let _ = sampled(tmp.path(), &model, &c, case, &["--steps", "2", "--vae", vae_dir.to_str().unwrap()]);
        let z = tmp.path().join(format!("{case}.z.npy"));
        let o = dit(&[
            "decode",
            "--vae",
            vae_dir.to_str().unwrap(),
            "--latent",
            z.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.ok, "{}", o.stderr);
        let images = dit_wasm::npy::read_f32(&tmp.path().join(format!("{case}.o.npy"))).unwrap().data;
        let vae_latent: Vec<f32> = match c.tensors.get(&format!("{case}.vae")) {
            Some(raw) => raw.iter().map(|&v| (v as f64 * vae.cfg.scaling_factor) as f32).collect(),
            None => c.tensors[&format!("{case}.out")].clone(),
        };
        let want = pollster::block_on(dit_wasm::pipeline::decode(&gpu, &vae, &vae_latent, n, LATENT, LATENT)).unwrap();
        check(&format!("{case}: the image from the reference's VAE latent"), &images, &want, 2e-3);
        // The model-space latent decoded as it is (what `dit decode` does) is another image for MeanFlow.
        let plain = dit_wasm::npy::read_f32(&out).unwrap().data;
        let d = common::max_diff(&plain, &images);
        println!("{case}: the latent decoded without the model's latent space differs by {d:.3}");
        if case.starts_with("meanflow") {
            assert!(d > 0.05, "the latent statistics made no difference");
        } else {
            assert!(d < 1e-6, "DMF decodes its latent as the VAE's own");
        }
    }
}

/// flowmap.md's checks: one step is eps - u(eps; 1, 0); α-Flow's one-step consistency sample is its plain one; DMF
/// with r = t is the base flow model (every block on E(t)): the same weights run as a SiT at time t.
#[test]
fn flow_map_self_checks() {
    let (c, tmp) = (cases(), tempfile::tempdir().unwrap());
    let model = meanflow(tmp.path());
    let plain = sampled(tmp.path(), &model, &c, "meanflow_1", &[]);
    let consistency = sampled(tmp.path(), &model, &c, "meanflow_1", &["--consistency"]);
    assert_eq!(plain, consistency, "a one-step consistency sample is the plain one");
    let gpu = gpus().remove(0);
    // A model directory's weights, under its own config changed by `adjust`.
    let load_as = |dir: &Path, adjust: &dyn Fn(&mut DitConfig)| {
        let (index, w) = pollster::block_on(dit_wasm::loader::from_dir(&gpu, &DirSource(dir.to_path_buf()))).unwrap();
        let mut cfg: DitConfig = serde_json::from_value(index.metadata.config).unwrap();
        adjust(&mut cfg);
        dit_wasm::Dit::load(&gpu, cfg, w).unwrap()
    };
    let load = |dir: &Path| load_as(dir, &|_| {});
    let labels: Vec<u32> = c.desc["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let n = labels.len();
    let eps = &c.tensors["meanflow_1.noise"][..n * 4 * LATENT * LATENT];
    let mf = load(&model);
    let plan = mf.plan(&gpu, n, LATENT).unwrap();
    plan.set_inputs(&gpu, eps, &vec![1.0; n], &labels).unwrap();
    plan.set_end_times(&gpu, &vec![1.0; n], &vec![0.0; n]).unwrap();
    plan.run(&gpu);
    let u = pollster::block_on(gpu.read_f32(&plan.out)).unwrap();
    let one: Vec<f32> = eps.iter().zip(&u).map(|(e, u)| e - u).collect();
    check("one step = eps - u(eps; 1, 0)", &plain, &one, 1e-5);

    let dmf_dir = dmf(tmp.path(), "dmf.pt");
    let dmf_model = load(&dmf_dir);
    // The same weights as a plain velocity network (a SiT: one conditioning E(t) + Y(y) everywhere).
    let sit_model = load_as(&dmf_dir, &|c| {
        c.arch = Family::Sit;
        c.dmf_depth = None;
    });
    for t in [0.3f32, 0.9] {
        let p = dmf_model.plan(&gpu, n, LATENT).unwrap();
        p.set_inputs(&gpu, eps, &vec![t; n], &labels).unwrap();
        p.set_end_times(&gpu, &vec![t; n], &vec![t; n]).unwrap();
        p.run(&gpu);
        let at_rt = pollster::block_on(gpu.read_f32(&p.out)).unwrap();
        let s = sit_model.plan(&gpu, n, LATENT).unwrap();
        let base = pollster::block_on(s.forward(&gpu, eps, &vec![t; n], &labels)).unwrap();
        check(&format!("DMF at r = t = {t} vs the base flow"), &at_rt, &base, 1e-6);
        // r != t differs (the decoder blocks see r).
        p.set_end_times(&gpu, &vec![t; n], &vec![0.0; n]).unwrap();
        p.run(&gpu);
        let jump = pollster::block_on(gpu.read_f32(&p.out)).unwrap();
        assert!(common::max_diff(&jump, &base) > 1e-2, "r must reach the decoder blocks");
    }
}

#[test]
fn flow_map_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (mf, out) = (meanflow(tmp.path()), tmp.path().join("o.npy"));
    let (m, o) = (mf.to_str().unwrap(), out.to_str().unwrap());
    let pt = fixture("flowmap/meanflow.pt");
    let dmf_pt = fixture("flowmap/dmf.pt");
    let xdir = tmp.path().join("x");
    let xs = xdir.to_str().unwrap();
    // DMF's split is not in the checkpoint; a wrapped file is not a flat state dict.
    fails_with(&["convert", dmf_pt.to_str().unwrap(), "--out", xs, "--arch", "dmf", "--heads", "2"], "--dmf-depth");
    let wrapped = fails_with(
        &["convert", pt.to_str().unwrap(), "--out", xs, "--arch", "dmf", "--dmf-depth", "2", "--heads", "2"],
        "missing tensors of the model: x_embedder.proj.weight",
    );
    assert!(wrapped.contains("under `model.`"), "{wrapped}");
    // A DMF file read as MeanFlow has no latent statistics and one embedder.
    fails_with(
        &["convert", dmf_pt.to_str().unwrap(), "--out", xs, "--arch", "meanflow", "--heads", "2"],
        "autoencoder_mean",
    );
    // The sampler must fit the model kind, both ways; the flow-map options need the flow-map sampler.
    fails_with(&["sample", "--model", m, "--sampler", "ddim", "--class", "1", "--out", o], "flowmap");
    let dit_file = format!("{}#heads=2", fixture("dit_p2_hd64.safetensors").display());
    fails_with(&["sample", "--model", &dit_file, "--sampler", "flowmap", "--class", "1", "--out", o], "ddpm, ddim");
    fails_with(&["sample", "--model", &dit_file, "--grid", "1,0", "--class", "1", "--out", o], "flow map");
    // Grids go from 1 down to 0; --steps and --grid must agree; consistency takes noise for each step.
    fails_with(&["sample", "--model", m, "--grid", "1,0.6,0.7,0", "--class", "1", "--out", o], "strictly decreasing");
    fails_with(&["sample", "--model", m, "--grid", "0.9,0", "--class", "1", "--out", o], "from 1 (noise) down to 0");
    fails_with(&["sample", "--model", m, "--steps", "3", "--grid", "1,0.5,0", "--class", "1", "--out", o], "disagree");
    fails_with(&["sample", "--model", m, "--steps", "0", "--class", "1", "--out", o], "between 1 and 1000");
    fails_with(&["sample", "--model", m, "--shift", "-1", "--class", "1", "--out", o], "shift");
    let noise = tmp.path().join("n.npy");
    dit_wasm::npy::write_f32(&noise, &[1, 1, 4, LATENT, LATENT], &vec![0.5; 4 * LATENT * LATENT]).unwrap();
    let ns = noise.to_str().unwrap();
    fails_with(
        &["sample", "--model", m, "--consistency", "--steps", "2", "--noise", ns, "--class", "1", "--out", o],
        "one per step",
    );
    // A flow map's forward needs its end times; the other models take none.
    let t = tmp.path().join("t.npy");
    let y = tmp.path().join("y.npy");
    dit_wasm::npy::write_f32(&t, &[1], &[0.5]).unwrap();
    common::write_int_npy(&y, &[1]);
    let x = tmp.path().join("x.npy");
    dit_wasm::npy::write_f32(&x, &[1, 4, LATENT, LATENT], &vec![0.5; 4 * LATENT * LATENT]).unwrap();
    let (ts, ys, ns) = (t.to_str().unwrap(), y.to_str().unwrap(), x.to_str().unwrap());
    fails_with(&["forward", "--model", m, "--x", ns, "--t", ts, "--y", ys, "--out", o], "--r");
    dit_wasm::npy::write_f32(&t, &[1], &[0.2]).unwrap();
    let r = tmp.path().join("r.npy");
    dit_wasm::npy::write_f32(&r, &[1], &[0.5]).unwrap();
    let rs = r.to_str().unwrap();
    fails_with(&["forward", "--model", m, "--x", ns, "--t", ts, "--y", ys, "--r", rs, "--out", o], "0 <= r <= t");
}

/// The key sets of the release files: α-Flow XL/2's backbone has 296 `model.*` tensors (with pos_embed), DMF-XL/2's
/// 292; both plan into DiT-XL/2's blocks (only shapes are read: no data).
#[test]
fn release_key_sets_plan_at_full_size() {
    use dit_wasm::weights::convert::{plan, ConvertOptions};
    use dit_wasm::weights::input::{SrcDType, SrcTensor};
    let xl = DitConfig::preset("XL/2", 256).unwrap();
    let specs = |family: Family| dit_tensors(&DitConfig { arch: family, learn_sigma: false, ..xl.clone() });
    let src = |name: String, shape: Vec<usize>| SrcTensor {
        name,
        shape,
        dtype: SrcDType::F32,
        offset: 0,
        storage: "0".into(),
    };
    let mut mf: Vec<SrcTensor> =
        specs(Family::Meanflow).into_iter().map(|s| src(format!("model.{}", s.name), s.shape)).collect();
    mf.push(src("model.pos_embed".into(), vec![1, 256, 1152]));
    assert_eq!(mf.len(), 296);
    mf.push(src("autoencoder_mean".into(), vec![1, 4, 32, 32]));
    mf.push(src("autoencoder_var".into(), vec![1, 4, 32, 32]));
    mf.push(src("autoencoder.decoder.conv_in.weight".into(), vec![512, 4, 3, 3]));
    let opts = ConvertOptions { arch: Family::Meanflow, ..Default::default() };
    let p = plan("alphaflow-XL-2-cfg.pt", &mf, None, &opts).unwrap();
    assert_eq!(p.items.len() + 1, 296, "every backbone tensor but pos_embed (checked) is planned");
    assert!(p.latent_stats.is_some() && p.pos_embed.is_some());
    let mut dmf: Vec<SrcTensor> = specs(Family::Dmf).into_iter().map(|s| src(s.name, s.shape)).collect();
    dmf.push(src("pos_embed".into(), vec![1, 256, 1152]));
    assert_eq!(dmf.len(), 292);
    dmf.push(src("logvar_linear.weight".into(), vec![1, 256]));
    let opts = ConvertOptions { arch: Family::Dmf, dmf_depth: Some(20), ..Default::default() };
    let p = plan("dmf_xl_2_256.pt", &dmf, None, &opts).unwrap();
    let cfg: DitConfig = serde_json::from_value(p.config).unwrap();
    assert_eq!(
        (p.items.len() + 1, cfg.dmf_depth, cfg.num_heads, cfg.preset_name()),
        (292, Some(20), 16, Some("DiT-XL/2".into()))
    );
    // One tensor short: the error names it.
    dmf.retain(|t| t.name != "blocks.27.mlp.fc2.bias");
    let e = plan("dmf_xl_2_256.pt", &dmf, None, &opts).unwrap_err().to_string();
    assert!(e.contains("blocks.27.mlp.fc2.bias"), "{e}");
}
