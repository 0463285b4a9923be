//! The kernels' WGSL on its own: every kernel the ops compile (`ops::compile_every_kernel`, with the sampler step)
//! parsed and validated by naga outside the device, as composed (override constants at their defaults) and once per
//! specialisation the device compiled (the override constants given its values): in process on each device
//! configuration of the parity tests, and as `dit kernels --dump` writes the files.
// Native only (naga as a dev-dependency, wgpu's native backends, the binary); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use dit_wasm::diffusion::sampler::Step;
use dit_wasm::gpu::Gpu;
use naga::valid::{Capabilities, ValidationFlags, Validator};
use std::path::{Path, PathBuf};

/// Parses and validates one kernel's WGSL (`path` names it in errors), then each specialisation, (entry point,
/// override constants), with its constants resolved.
fn validate(path: &str, wgsl: &str, specialisations: &[(String, Vec<(String, f64)>)]) {
    let module = naga::front::wgsl::parse_str(wgsl)
        .unwrap_or_else(|e| panic!("{path}: {}", e.emit_to_string_with_path(wgsl, path)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{path}: {}", e.emit_to_string_with_path(wgsl, path)));
    assert!(!specialisations.is_empty(), "{path}: compiled without a pipeline");
    for (entry, constants) in specialisations {
        let constants: naga::back::PipelineConstants = constants.iter().cloned().collect();
        let stage = Some((naga::ShaderStage::Compute, entry.as_str()));
        naga::back::pipeline_constants::process_overrides(&module, &info, stage, &constants)
            .unwrap_or_else(|e| panic!("{path} ({entry} {constants:?}): {e}"));
    }
}

/// Compiles every kernel on `gpu` and validates each; returns the kernels' paths.
fn validate_device(gpu: &Gpu) -> Vec<String> {
    dit_wasm::ops::compile_every_kernel(gpu).unwrap_or_else(|e| panic!("{}: {e}", common::label(gpu)));
    Step::kernel(gpu).unwrap();
    let kernels = gpu.compiled_kernels();
    for k in &kernels {
        let specs: Vec<_> = k
            .specialisations
            .iter()
            .map(|s| (s.entry.to_string(), s.constants.iter().map(|(n, v)| (n.to_string(), *v)).collect()))
            .collect();
        validate(&k.path, &k.wgsl, &specs);
    }
    println!("{}: {} kernels, {} pipelines valid", common::label(gpu), kernels.len(), gpu.kernel_count());
    kernels.into_iter().map(|k| k.path).collect()
}

#[test]
fn every_kernel_validates_with_naga_on_its_own() {
    let mut gpus = common::gpus();
    gpus.push(common::texture_gpu_without_subgroups());
    for (i, gpu) in gpus.iter().enumerate() {
        let paths = validate_device(gpu);
        // The GPU kernels are compiled where asked for, on any device (CPU adapters never choose them).
        for want in ["sampler", "linear/workgroup", "attention/split_hd72", "attention/per_query", "conv"] {
            assert!(i > 0 || paths.iter().any(|p| p == want), "{want} not in {paths:?}");
        }
    }
}

/// The `// pipeline: ENTRY NAME=value ...` lines heading a dumped file.
fn pipelines(wgsl: &str) -> Vec<(String, Vec<(String, f64)>)> {
    let parse = |line: &str| {
        let mut words = line.split_whitespace();
        let entry = words.next().expect("an entry point").to_string();
        let constants = words
            .map(|w| w.split_once('=').map(|(n, v)| (n.to_string(), v.parse::<f64>().expect("a number"))).unwrap())
            .collect();
        (entry, constants)
    };
    wgsl.lines().map_while(|l| l.strip_prefix("// pipeline: ")).map(parse).collect()
}

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            wgsl_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "wgsl") {
            out.push(p);
        }
    }
}

#[test]
fn dumped_kernels_validate_with_naga() {
    let tmp = tempfile::tempdir().unwrap();
    for linear in ["buffers", "textures"] {
        let dir = tmp.path().join(linear);
        let o = common::dit(&["kernels", "--dump", dir.to_str().unwrap(), "--linear", linear]);
        assert!(o.ok, "{}", o.stderr);
        println!("{}", o.stdout.trim());
        let mut files = vec![];
        wgsl_files(&dir, &mut files);
        assert!(files.iter().any(|f| f.ends_with("linear/workgroup.wgsl")), "{files:?}");
        for f in &files {
            let wgsl = std::fs::read_to_string(f).unwrap();
            validate(&f.display().to_string(), &wgsl, &pipelines(&wgsl));
        }
    }
}
