//! One model, every checkpoint layout: the release's .safetensors names, the official .pt (a zip pickle), a training
//! checkpoint (its `ema` entry), and the diffusers layout all convert to byte-identical shards; a pickle that would
//! run code is refused. Fixtures from tools/make_format_fixtures.py.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

use dit_wasm::weights::convert::{convert, ConvertOptions};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn every_dit_layout_gives_byte_identical_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ConvertOptions { heads: Some(1), input_size: Some(16), shard_mib: 1, ..Default::default() };
    let inputs = [
        "dit_p2_hd72_nosigma.safetensors",
        "dit_formats/official.pt",
        "dit_formats/train.pt",
        "dit_formats/diffusers/diffusion_pytorch_model.safetensors",
    ];
    let mut reference = None;
    for (i, input) in inputs.iter().enumerate() {
        let out = tmp.path().join(format!("m{i}"));
        // The diffusers layout reads heads and the latent size from its config.json.
        let o = if input.contains("diffusers") {
            ConvertOptions { shard_mib: 1, ..Default::default() }
        } else {
            opts.clone()
        };
        convert(&[fixture(input)], &out, &o).unwrap_or_else(|e| panic!("{input}: {e}"));
        let f = files(&out);
        println!("{input}: {} files, {} bytes", f.len(), f.iter().map(|x| x.1.len()).sum::<usize>());
        match &reference {
            None => reference = Some(f),
            Some(r) => assert!(r == &f, "{input} converts to different files"),
        }
    }
}

#[test]
fn a_pickle_that_runs_code_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = convert(&[fixture("dit_formats/evil.pt")], &tmp.path().join("x"), &ConvertOptions::default()).unwrap_err();
    println!("{e}");
    assert!(e.to_string().contains("refuses the pickle global `os.system`"), "{e}");
    assert!(!tmp.path().join("x").exists(), "nothing is written");
}
