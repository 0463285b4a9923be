//! Property tests of every parser that reads untrusted bytes: safetensors headers, shards, the model index, the
//! pickle machine, the .pt zip reader (whole-file, and by byte ranges: end records, central directory, local headers)
//! the single-file (byte-range) loader and the `.npy` reader must return an error, never panic, on random and on
//! mutated inputs.
//!
//! Two modes over the same properties: `cargo test` runs each for a fixed number of cases; the ignored test
//! `fuzz_for_a_fixed_time` (`DIT_FUZZ_SECONDS=60 cargo test --test fuzz -- --ignored`, run so by scripts/test.sh)
//! shares the seconds between the parsers, draws fresh cases from a clock seed until time is up, and prints the
//! executions per parser. (Coverage-guided fuzzing with cargo-fuzz would need a nightly toolchain and libFuzzer in CI;
//! this is a time-bounded random search with proptest's generators and shrinking.) A crash it finds is printed with
//! the seed and the shrunk input, and becomes a regression test at the end of this file.
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
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

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

/// The properties: each takes one generated case and must not panic.
mod check {
    use super::*;

    pub fn safetensors_header((bytes, len): (Vec<u8>, u64)) {
        let _ = parse_header("fuzz", &bytes, len);
    }

    pub fn mutated_header((f, cut): Mutation) {
        let file = fixture("dit_p4_hd72_io.safetensors");
        let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        let header = mutate(file[8..8 + n].to_vec(), &f, cut);
        let _ = parse_header("fuzz", &header, (file.len() - 8 - n) as u64);
    }

    pub fn index_json((f, cut): Mutation) {
        let valid = br#"{"metadata":{"format":"dit-wasm","format_version":1,"kind":"dit","config":{},"total_size":4,
            "shards":{"model-00001-of-00001.safetensors":{"size":10,"sha256":"00"}}},
            "weight_map":{"a":"model-00001-of-00001.safetensors"}}"#
            .to_vec();
        assert!(ModelIndex::parse(&valid).is_ok());
        let _ = ModelIndex::parse(&mutate(valid, &f, cut));
    }

    pub fn pickle(bytes: Vec<u8>) {
        let _ = unpickle("fuzz", &bytes);
    }

    pub fn pt_zip((f, cut): Mutation) {
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

    pub fn zip_records((bytes, size, n): (Vec<u8>, u64, u64)) {
        let _ = parse_end("fuzz", &bytes, size.max(bytes.len() as u64));
        let _ = parse_zip64_end("fuzz", &bytes, size);
        let _ = parse_central("fuzz", &bytes, CentralDir { entries: n, offset: size / 2, size: bytes.len() as u64 });
        let e = Entry { name: "a/data/0".into(), header: 0, size: size % 512, end: bytes.len() as u64 };
        let _ = data_offset("fuzz", &e, &bytes);
    }

    pub fn bin_by_ranges(((f, cut), tail, ranges): (Mutation, bool, u64)) {
        // Flips land in the first or last 4 KiB, where the zip's structure and the pickle are; data flips only
        // change values.
        let file = fixture("hub/DiT-tiny/vae/diffusion_pytorch_model.bin");
        let n = file.len();
        let f: Vec<(usize, u8)> =
            f.into_iter().map(|(i, b)| (if tail { n - 1 - i % 4096 } else { i % 4096 }, b)).collect();
        let bytes = mutate(file, &f, cut.map(|c| n - c % 8192));
        let src = MemoryRange { name: "fuzz.bin".into(), bytes, config_json: None };
        let opts = SingleOptions { range_bytes: ranges, ..Default::default() };
        let _ = pollster::block_on(load_single(&src, &opts, |_, _, _| Ok(()), |_, _| {}));
    }

    pub fn shard_with_index((f, cut): Mutation) {
        // The index's sha256 check is bypassed by recomputing it, so the shard parser itself sees the bytes.
        let shard = mutate(fixture("dit_p2_hd72_nosigma_io.safetensors"), &f, cut);
        let name = "model-00001-of-00001.safetensors".to_string();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&shard))
        };
        let index = format!(
            r#"{{"metadata":{{"format":"dit-wasm","format_version":1,"kind":"dit","config":{{}},"total_size":0,
            "shards":{{"{name}":{{"size":{},"sha256":"{sha}"}}}}}},"weight_map":{{"x":"{name}"}}}}"#,
            shard.len()
        );
        let idx = ModelIndex::parse(index.as_bytes()).unwrap();
        let src = MemorySource(HashMap::from([(name, shard)]));
        let _ = pollster::block_on(for_each_tensor(&src, &idx, |_, _, _| Ok(())));
    }

    pub fn single_file(((f, cut), ranges): (Mutation, u64)) {
        for (name, conv) in [
            ("vae_small_ldm.safetensors", ConvertOptions { norm_groups: Some(8), ..Default::default() }),
            (
                "dit_formats/diffusers/diffusion_pytorch_model.safetensors",
                ConvertOptions { heads: Some(2), input_size: Some(8), ..Default::default() },
            ),
        ] {
            let src = MemoryRange { name: name.into(), bytes: mutate(fixture(name), &f, cut), config_json: None };
            let opts = SingleOptions { convert: conv, range_bytes: ranges, ..Default::default() };
            let _ = pollster::block_on(load_single(&src, &opts, |_, _, _| Ok(()), |_, _| {}));
        }
    }

    /// A valid `.npy` (int64 [2, 3], as `dit forward --y` takes; its header is text, so flips and cuts reach the
    /// shape, the dtype and the lengths), mutated, or random bytes after the magic.
    pub fn npy(((f, cut), random): (Mutation, Option<Vec<u8>>)) {
        let bytes = match random {
            Some(tail) => [b"\x93NUMPY\x01\x00".as_slice(), &tail].concat(),
            None => mutate(valid_npy(), &f, cut),
        };
        let _ = dit_wasm::npy::parse_f32("fuzz.npy", &bytes);
        let _ = dit_wasm::npy::parse_int("fuzz.npy", &bytes);
    }

    /// A `.npy` written from parts: a dtype, an order, a shape of any dimensions (up to u64::MAX), then data bytes.
    pub fn npy_header((descr, fortran, dims, data): NpyParts) {
        let _ = dit_wasm::npy::parse_f32("fuzz.npy", &npy_from_parts(descr, fortran, &dims, &data));
        let _ = dit_wasm::npy::parse_int("fuzz.npy", &npy_from_parts(descr, fortran, &dims, &data));
    }
}

type NpyParts = (&'static str, bool, Vec<u64>, Vec<u8>);

fn npy_parts() -> impl Strategy<Value = NpyParts> {
    let descr = prop::sample::select(vec![
        "<f4", "<f8", "<i8", "<i4", "<i2", "|u1", "<u4", "<u8", ">f4", "<f2", "|b1", "O", "<c8", "|V4",
    ]);
    let dim = prop_oneof![0u64..5, any::<u64>()];
    (descr, any::<bool>(), prop::collection::vec(dim, 0..4), bytes(64))
}

fn npy_from_parts(descr: &str, fortran: bool, dims: &[u64], data: &[u8]) -> Vec<u8> {
    let shape: String = dims.iter().map(|d| format!("{d}, ")).collect();
    let order = if fortran { "True" } else { "False" };
    let header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({shape}), }}\n");
    [b"\x93NUMPY\x01\x00".as_slice(), &(header.len() as u16).to_le_bytes(), header.as_bytes(), data].concat()
}

/// Byte flips and a cut (see [`mutate`]).
type Mutation = (Vec<(usize, u8)>, Option<usize>);

fn mutation() -> impl Strategy<Value = Mutation> {
    (flips(), prop::option::of(any::<usize>()))
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// A `.npy` file written by the project's own writer: f32 [2, 3].
fn valid_npy() -> Vec<u8> {
    static NPY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    NPY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        dit_wasm::npy::write_f32(&p, &[2, 3], &[1.0, -2.0, 3.5, 0.0, 5.0, 6.0]).unwrap();
        std::fs::read(&p).unwrap()
    })
    .clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn safetensors_header_never_panics(v in (bytes(400), any::<u64>())) { check::safetensors_header(v) }

    #[test]
    fn mutated_headers_never_panic(v in mutation()) { check::mutated_header(v) }

    #[test]
    fn index_json_never_panics(v in mutation()) { check::index_json(v) }

    #[test]
    fn pickle_never_panics(v in bytes(300)) { check::pickle(v) }

    #[test]
    fn pt_zip_never_panics(v in mutation()) { check::pt_zip(v) }

    #[test]
    fn zip_records_never_panic(v in (bytes(400), any::<u64>(), 0u64..20)) { check::zip_records(v) }

    #[test]
    fn bin_read_by_ranges_never_panics(v in (mutation(), any::<bool>(), 1u64..100_000)) { check::bin_by_ranges(v) }

    #[test]
    fn shards_with_a_matching_index_never_panic(v in mutation()) { check::shard_with_index(v) }

    #[test]
    fn single_files_never_panic(v in (mutation(), 1u64..100_000)) { check::single_file(v) }

    #[test]
    fn npy_never_panics(v in (mutation(), prop::option::of(bytes(200)))) { check::npy(v) }

    #[test]
    fn npy_headers_never_panic(v in npy_parts()) { check::npy_header(v) }
}

/// Runs `check` on fresh cases of `strategy` until `until`, in rounds of 64 cases through proptest's runner (which
/// catches a panic and shrinks its input); returns the executions.
fn for_a_while<S: Strategy>(name: &str, strategy: S, check: fn(S::Value), until: Instant, seed: u64) -> u64
where
    S::Value: Clone,
{
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    let runs = std::cell::Cell::new(0u64);
    // A runner counts its successes up to `cases` once, so each round is a new runner, seeded by (seed, round).
    for round in 0u64.. {
        if Instant::now() >= until {
            break;
        }
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&round.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(config.clone(), TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        let result = runner.run(&strategy, |v| {
            runs.set(runs.get() + 1);
            check(v);
            Ok(())
        });
        if let Err(e) = result {
            panic!(
                "{name}: a crash (seed {seed}, round {round}); add the shrunk input below as a regression test: {e}"
            );
        }
    }
    runs.get()
}

#[test]
#[ignore = "time-bounded fuzzing: DIT_FUZZ_SECONDS=60 cargo test --test fuzz -- --ignored (scripts/test.sh runs it)"]
fn fuzz_for_a_fixed_time() {
    let seconds: f64 = std::env::var("DIT_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let seed = std::env::var("DIT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    type Run = Box<dyn Fn(Instant) -> u64>;
    macro_rules! parser {
        ($name:expr, $strategy:expr, $check:path) => {
            ($name, Box::new(move |until| for_a_while($name, $strategy, $check, until, seed)) as Run)
        };
    }
    let parsers = [
        parser!("safetensors header (random)", (bytes(400), any::<u64>()), check::safetensors_header),
        parser!("safetensors header (mutated)", mutation(), check::mutated_header),
        parser!("index JSON", mutation(), check::index_json),
        parser!("pickle", bytes(300), check::pickle),
        parser!(".pt zip (file)", mutation(), check::pt_zip),
        parser!("zip records", (bytes(400), any::<u64>(), 0u64..20), check::zip_records),
        parser!(".bin by ranges", (mutation(), any::<bool>(), 1u64..100_000), check::bin_by_ranges),
        parser!("shards + index", mutation(), check::shard_with_index),
        parser!("single files by ranges", (mutation(), 1u64..100_000), check::single_file),
        parser!(".npy (mutated, random)", (mutation(), prop::option::of(bytes(200))), check::npy),
        parser!(".npy header (from parts)", npy_parts(), check::npy_header),
    ];
    let share = Duration::from_secs_f64(seconds / parsers.len() as f64);
    println!("fuzzing {} parsers for {seconds} s in all (seed {seed}; DIT_FUZZ_SEED repeats a run):", parsers.len());
    let t0 = Instant::now();
    let mut total = 0;
    for (name, run) in &parsers {
        let start = Instant::now();
        let n = run(start + share);
        total += n;
        println!("  {name:<30} {n:>8} executions in {:.1} s", start.elapsed().as_secs_f64());
    }
    println!("  {:<30} {total:>8} executions in {:.1} s, no crash", "all", t0.elapsed().as_secs_f64());
}

/// Found by `npy_headers_never_panic`: a shape whose product overflows u64 made npyz panic while reading the header
/// (an overflow in a debug build; a wrong element count in a release build): [2^62, 4], then, with a zero first (the
/// element count is 0, but npyz's strides multiply the later dimensions), [0, 2, 2^63].
#[test]
fn npy_shape_that_overflows_is_an_error() {
    let bytes = npy_from_parts("<f4", false, &[1 << 32, 1 << 32], &[0; 16]);
    let e = dit_wasm::npy::parse_f32("big.npy", &bytes).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("big.npy") && e.contains("shape"), "{e}");
    for dims in [[1 << 62, 4, 1], [0, 2, 1 << 63], [u64::MAX, 2, 0]] {
        let e = dit_wasm::npy::parse_int("big.npy", &npy_from_parts("<i8", false, &dims, &[])).unwrap_err();
        assert!(e.to_string().contains("shape"), "{dims:?}: {e}");
    }
    // The same header with the data it announces reads.
    let ok = dit_wasm::npy::parse_f32("ok.npy", &npy_from_parts("<f4", false, &[2, 2], &[0; 16])).unwrap();
    assert_eq!((ok.shape, ok.data), (vec![2, 2], vec![0.0; 4]));
}
