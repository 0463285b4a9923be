//! Property tests of every parser that reads untrusted bytes: safetensors headers, shards, the model index, the
//! pickle machine, the .pt zip reader (whole-file, and by byte ranges: end records, central directory, local headers)
//! and the single-file (byte-range) loader must return an error, never panic, on random and on mutated inputs.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

use dit_wasm::weights::convert::ConvertOptions;
use dit_wasm::weights::convert::{Checkpoint, PtFile};
use dit_wasm::weights::input::parse_header;
use dit_wasm::weights::pickle::unpickle;
use dit_wasm::weights::single::{load_single, MemoryRange, SingleOptions};
use dit_wasm::weights::torchzip::{data_offset, parse_central, parse_end, parse_zip64_end, CentralDir, Entry};
use dit_wasm::weights::{for_each_tensor, MemorySource, ModelIndex};
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

/// A valid input with `flips` bytes replaced at random places and maybe truncated.
fn mutate(mut v: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(i, b) in flips {
        if !v.is_empty() {
            let n = v.len();
            v[i % n] = b;
        }
    }
    if let Some(c) = cut {
        v.truncate(c % (v.len() + 1));
    }
    v
}

fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn safetensors_header_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), len in any::<u64>()) {
        let _ = parse_header("fuzz", &bytes, len);
    }

    #[test]
    fn mutated_headers_never_panic(f in flips(), cut in prop::option::of(any::<usize>())) {
        let file = fixture("dit_p4_hd72_io.safetensors");
        let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        let header = mutate(file[8..8 + n].to_vec(), &f, cut);
        let _ = parse_header("fuzz", &header, (file.len() - 8 - n) as u64);
    }

    #[test]
    fn index_json_never_panics(f in flips(), cut in prop::option::of(any::<usize>())) {
        let valid = br#"{"metadata":{"format":"dit-wasm","format_version":1,"kind":"dit","config":{},"total_size":4,
            "shards":{"model-00001-of-00001.safetensors":{"size":10,"sha256":"00"}}},
            "weight_map":{"a":"model-00001-of-00001.safetensors"}}"#.to_vec();
        assert!(ModelIndex::parse(&valid).is_ok());
        let _ = ModelIndex::parse(&mutate(valid, &f, cut));
    }

    #[test]
    fn pickle_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = unpickle("fuzz", &bytes);
    }

    #[test]
    fn pt_zip_never_panics(f in flips(), cut in prop::option::of(any::<usize>())) {
        let bytes = mutate(fixture("dit_formats/official.pt"), &f, cut);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.pt");
        std::fs::write(&p, bytes).unwrap();
        if let Ok(mut pt) = PtFile::open(&p) {
            for t in pt.tensors().to_vec() {
                let _ = pt.read_f32(&t);
            }
        }
    }

    #[test]
    fn zip_records_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), size in any::<u64>(), n in 0u64..20) {
        let _ = parse_end("fuzz", &bytes, size.max(bytes.len() as u64));
        let _ = parse_zip64_end("fuzz", &bytes, size);
        let _ = parse_central("fuzz", &bytes, CentralDir { entries: n, offset: size / 2, size: bytes.len() as u64 });
        let e = Entry { name: "a/data/0".into(), header: 0, size: size % 512, end: bytes.len() as u64 };
        let _ = data_offset("fuzz", &e, &bytes);
    }

    #[test]
    fn bin_read_by_ranges_never_panics(f in flips(), cut in prop::option::of(any::<usize>()), tail in any::<bool>(), ranges in 1u64..100_000) {
        // Flips land in the first or last 4 KiB, where the zip's structure and the pickle are; data flips only
        // change values.
        let file = fixture("hub/DiT-tiny/vae/diffusion_pytorch_model.bin");
        let n = file.len();
        let f: Vec<(usize, u8)> = f.into_iter().map(|(i, b)| (if tail { n - 1 - i % 4096 } else { i % 4096 }, b)).collect();
        let bytes = mutate(file, &f, cut.map(|c| n - c % 8192));
        let src = MemoryRange { name: "fuzz.bin".into(), bytes, config_json: None };
        let opts = SingleOptions { range_bytes: ranges, ..Default::default() };
        let _ = pollster::block_on(load_single(&src, &opts, |_, _, _| Ok(()), |_, _| {}));
    }

    #[test]
    fn shards_with_a_matching_index_never_panic(f in flips(), cut in prop::option::of(any::<usize>())) {
        // The index's sha256 check is bypassed by recomputing it, so the shard parser itself sees the bytes.
        let shard = mutate(fixture("dit_p2_hd72_nosigma_io.safetensors"), &f, cut);
        let name = "model-00001-of-00001.safetensors".to_string();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&shard))
        };
        let index = format!(r#"{{"metadata":{{"format":"dit-wasm","format_version":1,"kind":"dit","config":{{}},"total_size":0,
            "shards":{{"{name}":{{"size":{},"sha256":"{sha}"}}}}}},"weight_map":{{"x":"{name}"}}}}"#, shard.len());
        let idx = ModelIndex::parse(index.as_bytes()).unwrap();
        let src = MemorySource(HashMap::from([(name, shard)]));
        let _ = pollster::block_on(for_each_tensor(&src, &idx, |_, _, _| Ok(())));
    }

    #[test]
    fn single_files_never_panic(f in flips(), cut in prop::option::of(any::<usize>()), ranges in 1u64..100_000) {
        for (name, conv) in [
            ("vae_small_ldm.safetensors", ConvertOptions { norm_groups: Some(8), ..Default::default() }),
            ("dit_formats/diffusers/diffusion_pytorch_model.safetensors", ConvertOptions { heads: Some(2), input_size: Some(8), ..Default::default() }),
        ] {
            let src = MemoryRange { name: name.into(), bytes: mutate(fixture(name), &f, cut), config_json: None };
            let opts = SingleOptions { convert: conv, range_bytes: ranges, ..Default::default() };
            let _ = pollster::block_on(load_single(&src, &opts, |_, _, _| Ok(()), |_, _| {}));
        }
    }
}
