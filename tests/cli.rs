//! The `dit` binary end to end: convert -> info -> forward against the reference, bench JSON, and every kind of bad
//! input ending in a one-line error and a non-zero exit (never a panic).
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{dit, fails_with, fixture, write_int_npy};
use std::path::PathBuf;
use std::process::Command;

fn io_tensor(st: &safetensors::SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let v = st.tensor(name).unwrap();
    let data = match v.dtype() {
        safetensors::Dtype::F32 => bytemuck::pod_collect_to_vec(v.data()),
        safetensors::Dtype::I32 => {
            bytemuck::pod_collect_to_vec::<u8, i32>(v.data()).into_iter().map(|x| x as f32).collect()
        }
        d => panic!("unexpected dtype {d:?}"),
    };
    (v.shape().to_vec(), data)
}

/// Converts the p2_hd64 fixture and writes its inputs as .npy; returns (tempdir, model dir).
fn prepared() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    common::convert_p2_hd64(&model, &["--shard-mib", "1"]);
    let io_bytes = std::fs::read(fixture("dit_p2_hd64_io.safetensors")).unwrap();
    let io = safetensors::SafeTensors::deserialize(&io_bytes).unwrap();
    let (xs, x) = io_tensor(&io, "x");
    let (_, t) = io_tensor(&io, "t");
    let (_, y) = io_tensor(&io, "y");
    dit_wasm::npy::write_f32(&tmp.path().join("x.npy"), &xs, &x).unwrap();
    dit_wasm::npy::write_f32(&tmp.path().join("t.npy"), &[t.len()], &t).unwrap();
    write_int_npy(&tmp.path().join("y.npy"), &y.iter().map(|&v| v as i64).collect::<Vec<_>>());
    (tmp, model)
}

#[test]
fn convert_info_forward_matches_reference() {
    let (tmp, model) = prepared();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let info = dit(&["info", model.to_str().unwrap()]);
    assert!(info.ok, "{}", info.stderr);
    println!("{}", info.stdout);
    assert!(info.stdout.contains("tensors:") && info.stdout.contains("verified"));

    let o = dit(&[
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--x",
        &p("x.npy"),
        "--t",
        &p("t.npy"),
        "--y",
        &p("y.npy"),
        "--out",
        &p("out.npy"),
    ]);
    assert!(o.ok, "forward failed: {}", o.stderr);
    let got = dit_wasm::npy::read_f32(&tmp.path().join("out.npy")).unwrap();
    let io_bytes = std::fs::read(fixture("dit_p2_hd64_io.safetensors")).unwrap();
    let io = safetensors::SafeTensors::deserialize(&io_bytes).unwrap();
    let (shape, want) = io_tensor(&io, "out");
    assert_eq!(got.shape, shape);
    common::check("dit forward (CLI) vs diffusers", &got.data, &want, 1e-3);
}

#[test]
fn bench_json_has_the_documented_fields() {
    let o = dit(&[
        "bench",
        "--preset",
        "S/2",
        "--res",
        "64",
        "--batch",
        "2",
        "--random-weights",
        "--json",
        "--repeat",
        "2",
        "--warmup",
        "0",
    ]);
    assert!(o.ok, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("one JSON object");
    println!("{v:#}");
    for key in ["adapter", "ms_per_forward", "gflops_per_s", "ops", "dispatches_per_forward", "baseline"] {
        assert!(!v[key].is_null(), "missing {key}");
    }
    assert!(v["ms_per_forward"].as_f64().unwrap() > 0.0);
    assert!(v["ops"]["linear"]["gflops_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["ops"]["attention"]["dispatches"].as_u64().unwrap() == 12);
    assert_eq!(v["output_finite"], true);
}

#[test]
fn bad_input_gives_one_line_errors() {
    let (tmp, model) = prepared();
    let m = model.to_str().unwrap().to_string();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let fwd = |x: &str, t: &str, y: &str| -> Vec<String> {
        ["forward", "--model", &m, "--x", x, "--t", t, "--y", y, "--out", &p("o.npy")]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>, what: &str| fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), what);

    // Missing files and directories.
    run(fwd(&p("nope.npy"), &p("t.npy"), &p("y.npy")), "nope.npy");
    fails_with(&["info", tmp.path().join("no-model").to_str().unwrap()], "model.safetensors.index.json");

    // Wrong shapes.
    dit_wasm::npy::write_f32(&tmp.path().join("x2d.npy"), &[3, 256], &vec![0.0; 768]).unwrap();
    run(fwd(&p("x2d.npy"), &p("t.npy"), &p("y.npy")), "[N, C, H, W]");
    dit_wasm::npy::write_f32(&tmp.path().join("t2.npy"), &[2], &[0.0, 1.0]).unwrap();
    run(fwd(&p("x.npy"), &p("t2.npy"), &p("y.npy")), "timesteps must have shape [3]");
    dit_wasm::npy::write_f32(&tmp.path().join("x3c.npy"), &[3, 3, 8, 8], &vec![0.0; 576]).unwrap();
    run(fwd(&p("x3c.npy"), &p("t.npy"), &p("y.npy")), "3 channels");

    // Values out of range.
    write_int_npy(&tmp.path().join("y_big.npy"), &[1, 2, 1001]);
    run(fwd(&p("x.npy"), &p("t.npy"), &p("y_big.npy")), "class label 1001");
    write_int_npy(&tmp.path().join("y_neg.npy"), &[1, -2, 3]);
    run(fwd(&p("x.npy"), &p("t.npy"), &p("y_neg.npy")), "negative");
    dit_wasm::npy::write_f32(&tmp.path().join("t_big.npy"), &[3], &[0.0, 1000.0, 5.0]).unwrap();
    run(fwd(&p("x.npy"), &p("t_big.npy"), &p("y.npy")), "outside 0..999");
    let mut x = dit_wasm::npy::read_f32(&tmp.path().join("x.npy")).unwrap();
    x.data[5] = f32::NAN;
    dit_wasm::npy::write_f32(&tmp.path().join("x_nan.npy"), &x.shape, &x.data).unwrap();
    run(fwd(&p("x_nan.npy"), &p("t.npy"), &p("y.npy")), "NaN");

    // Not a model, not a checkpoint, corrupt shard.
    std::fs::write(tmp.path().join("junk.safetensors"), b"this is not a safetensors file at all").unwrap();
    fails_with(&["convert", &p("junk.safetensors"), "--out", &p("junk_out")], "not a safetensors file");
    fails_with(&["convert", fixture("dit_p4_hd72.safetensors").to_str().unwrap(), "--out", &p("o2")], "--heads");
    let shard = std::fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .unwrap();
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&shard, bytes).unwrap();
    fails_with(&["info", &m], "sha256 mismatch");
    run(fwd(&p("x.npy"), &p("t.npy"), &p("y.npy")), "sha256 mismatch");
}

#[test]
fn sample_is_deterministic_and_rejects_bad_values() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    assert!(
        dit(&["convert", fixture("dit_p2_hd64.safetensors").to_str().unwrap(), "--out", &p("dit"), "--heads", "2"]).ok
    );
    assert!(
        dit(&[
            "convert",
            fixture("vae_small/diffusion_pytorch_model.safetensors").to_str().unwrap(),
            "--out",
            &p("vae")
        ])
        .ok
    );
    let run = |seed: &str, out: &str, sampler: &str| {
        let o = dit(&[
            "sample",
            "--model",
            &p("dit"),
            "--vae",
            &p("vae"),
            "--class",
            "3",
            "--class",
            "7",
            "--steps",
            "8",
            "--sampler",
            sampler,
            "--seed",
            seed,
            "--quiet",
            "--out",
            &p(out),
        ]);
        assert!(o.ok, "{}", o.stderr);
        std::fs::read(p(out)).unwrap()
    };
    for sampler in ["ddpm", "ddim", "dpmpp2m"] {
        let a = run("11", "a.png", sampler);
        let b = run("11", "b.png", sampler);
        let c = run("12", "c.png", sampler);
        assert_eq!(a, b, "{sampler}: same seed, same image");
        assert_ne!(a, c, "{sampler}: another seed, another image");
        assert_eq!(&a[..8], b"\x89PNG\r\n\x1a\n");
    }
    // .npy output: [N, 3, H, W] f32.
    let o = dit(&[
        "sample",
        "--model",
        &p("dit"),
        "--vae",
        &p("vae"),
        "--class",
        "3",
        "--steps",
        "4",
        "--quiet",
        "--out",
        &p("img.npy"),
    ]);
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(dit_wasm::npy::read_f32(&tmp.path().join("img.npy")).unwrap().shape, [1, 3, 16, 16]);

    let base = ["sample", "--model", &p("dit"), "--vae", &p("vae"), "--class", "3", "--quiet", "--out", &p("x.png")];
    let bad = |extra: &[&str], what: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        fails_with(&args, what);
    };
    bad(&["--cfg", "nan"], "not a finite number");
    bad(&["--cfg", "inf"], "not a finite number");
    bad(&["--steps", "0"], "between 1 and 1000");
    bad(&["--steps", "1001"], "between 1 and 1000");
    bad(&["--sampler", "lms"], "unknown sampler");
    bad(&["--sampler", "euler"], "does not sample a dit model");
    bad(&["--cfg-channels", "three"], "unknown guidance rule");
    bad(&["--class", "1001"], "class 1001 is out of range");
    bad(&["--class", "-1"], "negative");
    dit_wasm::npy::write_f32(&tmp.path().join("noise.npy"), &[2, 1, 4, 8, 8], &vec![0.5; 512]).unwrap();
    bad(&["--steps", "8", "--noise", &p("noise.npy")], "noise has 512 values");
    fails_with(
        &["sample", "--model", &p("dit"), "--vae", &p("vae"), "--class", "3", "--out", &p("x.jpg")],
        ".png or .npy",
    );
}

#[test]
fn sample_blends_classes_in_the_label_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    common::convert_p2_hd64(&tmp.path().join("dit"), &[]);
    // No VAE: the final latents go to the .npy, so the comparisons see the sampler's output itself.
    let model = p("dit");
    let run = |out: &str, extra: &[&str]| {
        let out = p(out);
        let mut args = vec!["sample", "--model", &model, "--steps", "4", "--sampler", "ddim", "--seed", "5"];
        args.extend_from_slice(&["--quiet", "--out", &out]);
        args.extend_from_slice(extra);
        let o = dit(&args);
        assert!(o.ok, "{}", o.stderr);
        std::fs::read(&out).unwrap()
    };
    let plain_a = run("a.npy", &["--class", "3"]);
    let plain_b = run("b.npy", &["--class", "7"]);
    let alpha0 = run("a0.npy", &["--class", "3", "--blend", "7", "--alpha", "0"]);
    let alpha1 = run("a1.npy", &["--class", "3", "--blend", "7", "--alpha", "1"]);
    let half = run("half.npy", &["--class", "3", "--blend", "7"]);
    let half_given = run("half2.npy", &["--class", "3", "--blend", "7", "--alpha", "0.5"]);
    assert!(alpha0 == plain_a, "--alpha 0 is the plain class");
    assert!(alpha1 == plain_b, "--alpha 1 is the blend class");
    assert!(half == half_given, "--alpha defaults to 0.5");
    assert!(half != plain_a && half != plain_b, "a blend is neither class");
    let latents = |b: &[u8]| -> Vec<f32> { bytemuck::pod_collect_to_vec(&b[b.len() - 4 * 4 * 8 * 8..]) };
    println!(
        "blend 3+7 at 0.5 vs class 3: max |diff| {}, vs class 7: {}",
        common::max_diff(&latents(&half), &latents(&plain_a)),
        common::max_diff(&latents(&half), &latents(&plain_b))
    );

    let base = ["sample", "--model", &p("dit"), "--class", "3", "--steps", "2", "--quiet", "--out", &p("x.npy")];
    let bad = |extra: &[&str], what: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        fails_with(&args, what);
    };
    bad(&["--alpha", "0.3"], "--alpha needs --blend");
    bad(&["--blend", "7", "--alpha", "1.5"], "blend alpha 1.5 must be a number from 0 to 1");
    bad(&["--blend", "7", "--alpha", "-0.1"], "blend alpha -0.1");
    bad(&["--blend", "7", "--alpha", "nan"], "blend alpha NaN");
    bad(&["--blend", "1000"], "blend class 1000 is out of range");
    bad(&["--blend", "1001"], "blend class 1001 is out of range");
    bad(&["--blend", "-1"], "blend class -1 is negative");
}

#[test]
fn sample_uses_the_embedded_demo_model_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sneaker.png");
    let o = Command::new(env!("CARGO_BIN_EXE_dit"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sample", "--class", "7", "--quiet", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // It says which demo it used: the flow-map demo (one step by default), the DiT demo named beside it.
    println!("{stderr}");
    assert!(stderr.contains("models/demo/flowmap") && stderr.contains("models/demo/dit"), "{stderr}");
    let png = std::fs::read(&out).unwrap();
    // IHDR: width and height, big-endian, at bytes 16..24. The demo model makes 32x32 images; the grid adds a 2-pixel
    // border.
    let (w, h) =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    println!("dit sample --class 7 (no --model): {w}x{h} PNG, {} bytes", png.len());
    assert_eq!((w, h), (36, 36));
}

#[test]
fn output_paths_are_checked_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/dir/x.png");
    // The model does not exist either: the output is checked first, before anything is loaded or sampled.
    let args = ["sample", "--model", "/no/such/model", "--class", "1", "--out", missing.to_str().unwrap()];
    fails_with(&args, "does not exist");
    let latent = tmp.path().join("nope/z.npy");
    let args = ["sample", "--class", "1", "--latent-out", latent.to_str().unwrap(), "--out", "x.png"];
    fails_with(&args, "does not exist");
    let (png, folder) = (tmp.path().join("d.png"), tmp.path().to_str().unwrap());
    fails_with(&["sample", "--class", "1", "--out", png.to_str().unwrap(), "--latent-out", folder], "is a folder");
    let fwd = ["forward", "--model", "m", "--x", "x.npy", "--t", "t.npy", "--y", "y.npy", "--out", "/no/such/o.npy"];
    fails_with(&fwd, "does not exist");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "a failed check leaves nothing behind");
    // An existing output passes the check untouched (here the missing model fails the run after it).
    let existing = tmp.path().join("existing.png");
    std::fs::write(&existing, b"keep").unwrap();
    fails_with(&["sample", "--model", "/no/such/model", "--class", "1", "--out", existing.to_str().unwrap()], "model");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep");
}

#[test]
fn no_foreign_error_lines_without_a_runtime_dir() {
    // Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set" when there is none; the binary must
    // not pass that on as if it were the user's error.
    let o = Command::new(env!("CARGO_BIN_EXE_dit")).arg("gpu").env_remove("XDG_RUNTIME_DIR").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("dit gpu without XDG_RUNTIME_DIR: exit {:?}, stderr {stderr:?}", o.status.code());
    assert!(o.status.success(), "{stderr}");
    assert!(!stderr.lines().any(|l| l.contains("error")), "stderr has an error line: {stderr}");
}
