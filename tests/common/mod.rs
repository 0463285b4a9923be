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

/// Storage-buffer weights read as `vec4<f16>` (the device the f16-arithmetic kernels run on), or None where the adapter
/// lacks shader-f16 (a failure with `DIT_REQUIRE_F16=1`).
pub fn f16_gpu() -> Option<Gpu> {
    let opts = GpuOptions { f16: F16Mode::Native, linear_path: LinearPath::Buffers, ..Default::default() };
    match pollster::block_on(Gpu::new(&opts)) {
        Ok(g) => Some(g),
        Err(e) if std::env::var("DIT_REQUIRE_F16").as_deref() == Ok("1") => {
            panic!("DIT_REQUIRE_F16=1 but the shader-f16 path is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("note: f16-arithmetic kernels not tested on this adapter: {e}");
            None
        }
    }
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

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Writes labels as an int64 `.npy` vector (what `dit forward --y` reads).
pub fn write_int_npy(path: &std::path::Path, data: &[i64]) {
    use npyz::WriterBuilder;
    let f = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::new().default_dtype().shape(&[data.len() as u64]).writer(f).begin_nd().unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// What a run of the `dit` binary gave.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `dit` binary.
pub fn dit(args: &[&str]) -> Out {
    dit_with(args, |_| {})
}

/// Runs the `dit` binary with its command adjusted first (environment variables).
pub fn dit_with(args: &[&str], adjust: impl FnOnce(&mut std::process::Command)) -> Out {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dit"));
    cmd.args(args);
    adjust(&mut cmd);
    let o = cmd.output().expect("run dit");
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// `dit convert` of the DiT fixture `dit_p2_hd64` (2 heads of 64) into `out`, with `extra` arguments.
pub fn convert_p2_hd64(out: &std::path::Path, extra: &[&str]) {
    let input = fixture("dit_p2_hd64.safetensors");
    let mut args = vec!["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--heads", "2"];
    args.extend(extra);
    let o = dit(&args);
    assert!(o.ok, "convert failed: {}", o.stderr);
}

/// Asserts a clean failure: non-zero exit, one `error:` line naming `what`, no panic. Returns that line.
pub fn fails_with(args: &[&str], what: &str) -> String {
    failed(args, dit(args), what)
}

/// Asserts that `o`, the run of `dit args`, is a clean failure (see `fails_with`). Returns the error line.
pub fn failed(args: &[&str], o: Out, what: &str) -> String {
    println!("dit {}\n  -> {}", args.join(" "), o.stderr.trim());
    assert!(!o.ok, "expected failure for {args:?}");
    assert!(!o.stderr.contains("panicked"), "panic for {args:?}: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got {:?}", lines);
    assert!(lines[0].starts_with("error: ") && lines[0].contains(what), "{:?} lacks {what:?}", lines[0]);
    lines[0].to_string()
}

/// Tensors by name: shape and the bytes handed on.
pub type Tensors = std::collections::BTreeMap<String, (Vec<usize>, Vec<u8>)>;

/// The tensors `dit convert` writes for `input`.
pub fn converted(input: &std::path::Path, opts: &dit_wasm::weights::convert::ConvertOptions) -> Tensors {
    use dit_wasm::weights::{for_each_tensor, read_index, DirSource};
    let tmp = tempfile::tempdir().unwrap();
    dit_wasm::weights::convert::convert(&[input.to_path_buf()], tmp.path(), opts).unwrap();
    let src = DirSource(tmp.path().to_path_buf());
    let index = pollster::block_on(read_index(&src)).unwrap();
    let mut out = Tensors::new();
    pollster::block_on(for_each_tensor(&src, &index, |n, s, b| {
        out.insert(n.to_string(), (s.to_vec(), b.to_vec()));
        Ok(())
    }))
    .unwrap();
    out
}

/// The tensors one checkpoint read in place by byte ranges hands on (each once), and the bytes it reported read.
pub fn single<R: dit_wasm::weights::single::RangeSource>(
    src: &R,
    opts: &dit_wasm::weights::single::SingleOptions,
) -> Result<(Tensors, u64), dit_wasm::error::Error> {
    let mut out = Tensors::new();
    let mut read = 0;
    pollster::block_on(dit_wasm::weights::single::load_single(
        src,
        opts,
        |n, s, b| {
            assert!(out.insert(n.to_string(), (s.to_vec(), b.to_vec())).is_none(), "{n} twice");
            Ok(())
        },
        |r, _| read = r,
    ))?;
    Ok((out, read))
}
