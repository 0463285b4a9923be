//! One `.safetensors` checkpoint used as it is, read by byte ranges: for every single-file layout (the release's DiT
//! names, the diffusers DiT, the SD-VAE in diffusers, legacy diffusers and ldm names) the tensors handed to the GPU are
//! byte for byte those `dit convert` writes; a whole-file sha256 is checked; truncated files, corrupt headers and
//! sources that ignore the range asked for are errors, never panics.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{converted, fixture, single};
use dit_wasm::error::Error;
use dit_wasm::weights::convert::ConvertOptions;
use dit_wasm::weights::single::{FileRange, MemoryRange, RangeSource, SingleOptions};
use sha2::{Digest, Sha256};
use std::path::Path;

fn memory(path: &Path) -> MemoryRange {
    let config = path.parent().unwrap().join("config.json");
    MemoryRange {
        name: path.file_name().unwrap().to_string_lossy().into(),
        bytes: std::fs::read(path).unwrap(),
        config_json: config.is_file().then(|| std::fs::read(&config).unwrap()),
    }
}

#[test]
fn every_single_file_layout_gives_the_converted_tensors() {
    let dit = ConvertOptions { heads: Some(1), input_size: Some(16), ..Default::default() };
    let cases = [
        ("dit_p2_hd72_nosigma.safetensors", dit.clone()),
        ("dit_formats/diffusers/diffusion_pytorch_model.safetensors", ConvertOptions::default()),
        ("vae_small/diffusion_pytorch_model.safetensors", ConvertOptions::default()),
        ("vae_small_legacy.safetensors", ConvertOptions { norm_groups: Some(8), ..Default::default() }),
        ("vae_small_ldm.safetensors", ConvertOptions { norm_groups: Some(8), ..Default::default() }),
    ];
    for (name, conv) in cases {
        let path = fixture(name);
        let want = converted(&path, &conv);
        let file_len = std::fs::metadata(&path).unwrap().len();
        // Small ranges: many reads, tensors split across none of them but q/k/v parts gathered across several.
        for range_bytes in [4096, 1 << 20] {
            let opts = SingleOptions { convert: conv.clone(), range_bytes, ..Default::default() };
            let (got, read) = single(&memory(&path), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{name}: tensor names");
            for (k, v) in &want {
                assert!(got[k] == *v, "{name}: tensor {k} differs from the converted one");
            }
            println!("{name} (ranges of {range_bytes} B): {} tensors identical to `dit convert`, read {read} of {file_len} bytes", got.len());
            let (file, _) = single(&FileRange(path.clone()), &opts).unwrap();
            assert!(file == got, "{name}: file and memory sources agree");
        }
        // With the file's sha256 every byte is read and checked.
        let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        let opts =
            SingleOptions { convert: conv.clone(), sha256: Some(sha.clone()), range_bytes: 4096, ..Default::default() };
        let (got, read) = single(&memory(&path), &opts).unwrap();
        assert_eq!((got, read + 8 + header_len(&path)), (want, file_len), "{name}: hashed read covers the file");
        let mut wrong = sha.into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        let opts = SingleOptions {
            convert: conv.clone(),
            sha256: Some(String::from_utf8(wrong).unwrap()),
            range_bytes: 4096,
            ..Default::default()
        };
        let Err(e) = single(&memory(&path), &opts) else { panic!("{name}: loaded with a wrong sha256") };
        println!("  wrong sha256: {e}");
        assert!(matches!(e, Error::Integrity { .. }), "{e}");
    }
}

fn header_len(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

#[test]
fn a_corrupt_byte_is_an_integrity_error_when_the_digest_is_given() {
    let path = fixture("dit_p2_hd72_nosigma.safetensors");
    let good = std::fs::read(&path).unwrap();
    let sha = hex::encode(Sha256::digest(&good));
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 0x40; // the exponent byte of the last f32: a value far beyond fp16
    let conv = ConvertOptions { heads: Some(1), input_size: Some(16), ..Default::default() };
    let src = MemoryRange { name: "flipped.safetensors".into(), bytes: bad, config_json: None };
    let Err(e) = single(&src, &SingleOptions { convert: conv.clone(), ..Default::default() }) else { panic!("loaded") };
    println!("no digest: {e}");
    assert!(e.to_string().contains("fp16 range"), "{e}");
    let Err(e) = single(&src, &SingleOptions { convert: conv, sha256: Some(sha), ..Default::default() }) else {
        panic!("loaded")
    };
    println!("with the digest: {e}");
    assert!(matches!(e, Error::Integrity { .. }), "{e}");
}

/// A server that answers every range request with the whole file (HTTP 200 instead of 206).
struct IgnoresRange(Vec<u8>);

impl RangeSource for IgnoresRange {
    fn describe(&self) -> String {
        "ignores-range.safetensors".into()
    }
    async fn size(&self) -> dit_wasm::Result<u64> {
        Ok(self.0.len() as u64)
    }
    async fn read_range(&self, _: u64, _: u64) -> dit_wasm::Result<Vec<u8>> {
        Ok(self.0.clone())
    }
}

#[test]
fn bad_files_and_sources_are_errors() {
    let path = fixture("vae_small/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let opts =
        SingleOptions { convert: ConvertOptions { norm_groups: Some(8), ..Default::default() }, ..Default::default() };
    let try_bytes =
        |b: Vec<u8>| single(&MemoryRange { name: "m.safetensors".into(), bytes: b, config_json: None }, &opts);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("empty", vec![]),
        ("header only", bytes[..8 + header_len(&path) as usize].to_vec()),
        ("huge header length", [u64::MAX.to_le_bytes().to_vec(), bytes[8..].to_vec()].concat()),
        ("not json", [8u64.to_le_bytes().to_vec(), b"not json".to_vec()].concat()),
        ("no known tensors", {
            let h = br#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
            [(h.len() as u64).to_le_bytes().to_vec(), h.to_vec(), vec![0; 4]].concat()
        }),
    ];
    let mut header_cut = bytes.clone();
    header_cut.truncate(20);
    cases.push(("cut in the header", header_cut));
    for (what, b) in cases {
        let Err(e) = try_bytes(b) else { panic!("{what}: loaded") };
        println!("{what}: {e}");
        if what == "truncated" || what == "empty" || what == "cut in the header" {
            assert!(e.to_string().contains("truncated"), "{what}: {e}");
        }
    }
    assert!(try_bytes(bytes.clone()).is_ok(), "the intact file loads with the same options");
    let Err(e) = single(&IgnoresRange(bytes), &opts) else { panic!("a source that ignores ranges: loaded") };
    println!("ignores Range: {e}");
    assert!(e.to_string().contains("does not honour Range"), "{e}");
}
