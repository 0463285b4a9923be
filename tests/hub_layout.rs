//! Models in the layout of the official DiT repos on the Hugging Face Hub (tests/fixtures/hub, written by
//! tools/make_hub_fixtures.py): a diffusers pipeline folder whose weights are `torch.save` `.bin` files, read in
//! place by byte ranges.
//! - the ranged `.bin` reader gives the tensors of the source model (the safetensors the fixture was made from) and
//!   of `dit convert` on the same file, and reads neither the per-block copies of the embedders nor the VAE's encoder
//!   (bytes counted through a wrapping source, checked against the entries the zip crate lists);
//! - `dit sample --model <pipeline> --class N` (VAE from the pipeline) matches the sampler parity references;
//! - bad input (another architecture, a truncated `.bin`, a pickle with a disallowed global, a folder with no model)
//!   is a one-line error from `dit sample`, `dit info` and `dit convert`.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{converted, dit, fails_with, fixture, Tensors};
use dit_wasm::error::Error;
use dit_wasm::weights::convert::ConvertOptions;
use dit_wasm::weights::single::{FileRange, MemoryRange, RangeSource, SingleOptions};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

fn hub(name: &str) -> PathBuf {
    fixture("hub").join(name)
}

/// A source that records every range read from the one it wraps.
struct Counting<R> {
    inner: R,
    reads: RefCell<Vec<(u64, u64)>>,
}

impl<R: RangeSource> RangeSource for Counting<R> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn size(&self) -> dit_wasm::Result<u64> {
        self.inner.size().await
    }
    async fn read_range(&self, start: u64, end: u64) -> dit_wasm::Result<Vec<u8>> {
        self.reads.borrow_mut().push((start, end));
        self.inner.read_range(start, end).await
    }
    async fn config_json(&self) -> dit_wasm::Result<Option<Vec<u8>>> {
        self.inner.config_json().await
    }
}

/// The tensors one checkpoint read in place hands on.
fn single<R: RangeSource>(src: &R, opts: &SingleOptions) -> Result<Tensors, Error> {
    common::single(src, opts).map(|(t, _)| t)
}

/// Byte ranges of the data of the zip entries holding the storages of the tensors `skip` selects, from the zip crate
/// and the pickle of data.pkl as the zip crate reads it (independent of the ranged reader under test).
fn skipped_data(path: &Path, skip: impl Fn(&str) -> bool) -> (Vec<(u64, u64)>, usize) {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let prefix = zip.name_for_index(0).unwrap().unwrap().split('/').next().unwrap().to_string();
    let mut pkl = vec![];
    zip.by_name(&format!("{prefix}/data.pkl")).unwrap().read_to_end(&mut pkl).unwrap();
    let tensors = dit_wasm::weights::pickle::checkpoint_tensors("pkl", &pkl).unwrap();
    let mut out = vec![];
    let mut n = 0;
    for t in tensors.iter().filter(|t| skip(&t.name)) {
        let e = zip.by_name(&format!("{prefix}/data/{}", t.storage)).unwrap();
        let start = e.data_start().unwrap_or(e.header_start());
        out.push((start, start + e.size()));
        n += 1;
    }
    (out, n)
}

/// Bytes covered by a set of ranges.
fn union(ranges: &[(u64, u64)]) -> u64 {
    let mut v = ranges.to_vec();
    v.sort();
    let (mut total, mut end) = (0, 0);
    for (s, e) in v {
        if e > end {
            total += e - s.max(end);
            end = e;
        }
    }
    total
}

#[test]
fn bin_read_in_place_matches_the_source_model_and_skips_what_the_model_does_not_use() {
    type Skip = fn(&str) -> bool;
    let cases: [(&str, &str, Skip); 2] = [
        ("DiT-tiny/transformer/diffusion_pytorch_model.bin", "dit_p2_hd64.safetensors", |n| {
            n.contains(".norm1.emb.") && !n.starts_with("transformer_blocks.0.")
        }),
        ("DiT-tiny/vae/diffusion_pytorch_model.bin", "vae_small/diffusion_pytorch_model.safetensors", |n| {
            n.starts_with("encoder.") || n.starts_with("quant_conv.")
        }),
    ];
    for (bin, source, skip) in cases {
        let path = hub(bin);
        let file_len = std::fs::metadata(&path).unwrap().len();
        // The references: the model the fixture was made from, and `dit convert` of the same .bin.
        let heads = ConvertOptions { heads: Some(2), ..Default::default() };
        let plain = ConvertOptions::default();
        let want = converted(&fixture(source), if bin.contains("transformer") { &heads } else { &plain });
        let whole = converted(&path, &ConvertOptions::default());
        assert!(whole == want, "{bin}: `dit convert` of it disagrees with {source}");
        let (skipped, n_skipped) = skipped_data(&path, skip);
        assert!(n_skipped > 0, "{bin}: nothing to skip");
        let skipped_bytes: u64 = skipped.iter().map(|(s, e)| e - s).sum();
        for range_bytes in [1 << 10, 1 << 20, 64 << 20] {
            let src = Counting { inner: FileRange(path.clone()), reads: RefCell::new(vec![]) };
            let opts = SingleOptions { range_bytes, ..Default::default() };
            let got = single(&src, &opts).unwrap_or_else(|e| panic!("{bin}: {e}"));
            assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{bin}: tensor names");
            for (k, v) in &want {
                assert!(got[k] == *v, "{bin}: tensor {k} differs");
            }
            let reads = src.reads.borrow();
            let read: u64 = reads.iter().map(|(s, e)| e - s).sum();
            for &(s, e) in reads.iter() {
                for &(ds, de) in &skipped {
                    assert!(e <= ds || s >= de, "{bin}: read {s}..{e} touches skipped data {ds}..{de}");
                }
            }
            let distinct = union(&reads);
            println!(
                "{bin} (ranges of {range_bytes} B): {} tensors identical to {source} and to `dit convert`; \
                 {} reads, {read} bytes ({distinct} distinct) of {file_len}; {n_skipped} unused tensors \
                 ({skipped_bytes} bytes) not read",
                got.len(),
                reads.len()
            );
            assert!(distinct + skipped_bytes <= file_len, "{bin}: read {distinct} distinct bytes");
            // The end records are looked for in one read of the last 64 KiB; every other byte is read once.
            assert!(read <= distinct + (64 << 10) + 100, "{bin}: {read} bytes read for {distinct} distinct ones");
        }
        // With the file's sha256 every byte is read, once, and checked.
        let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        let src = Counting { inner: FileRange(path.clone()), reads: RefCell::new(vec![]) };
        let opts = SingleOptions { sha256: Some(sha.clone()), range_bytes: 1 << 20, ..Default::default() };
        assert!(single(&src, &opts).unwrap() == want, "{bin}: hashed read");
        let mut covered: Vec<(u64, u64)> = src.reads.borrow().clone();
        covered.sort();
        let mut end = 0;
        for (s, e) in covered {
            assert!(s <= end, "{bin}: a gap before {s} in the hashed read");
            end = end.max(e);
        }
        assert_eq!(end, file_len, "{bin}: the hashed read covers the file");
        let wrong = format!("{}{}", if sha.starts_with('0') { '1' } else { '0' }, &sha[1..]);
        let opts = SingleOptions { sha256: Some(wrong), ..Default::default() };
        let Err(e) = single(&FileRange(path.clone()), &opts) else { panic!("{bin}: loaded with a wrong sha256") };
        println!("  wrong sha256: {e}");
        assert!(matches!(e, Error::Integrity { .. }), "{e}");
    }
}

#[test]
fn bad_bins_are_format_errors() {
    let good = std::fs::read(hub("DiT-tiny/transformer/diffusion_pytorch_model.bin")).unwrap();
    let config = std::fs::read(hub("DiT-tiny/transformer/config.json")).unwrap();
    let try_bytes = |what: &str, bytes: Vec<u8>| {
        let src = MemoryRange { name: format!("{what}.bin"), bytes, config_json: Some(config.clone()) };
        single(&src, &SingleOptions::default()).map(|_| ())
    };
    let mut lying = good.clone();
    // The central directory's first entry (data.pkl) claims 1 GB of data.
    let eocd = good.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    let cd = u32::from_le_bytes(good[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    lying[cd + 20..cd + 28].copy_from_slice(&[0, 0, 0, 0x40, 0, 0, 0, 0x40]);
    let cases = [
        (
            "truncated",
            std::fs::read(hub("DiT-truncated/transformer/diffusion_pytorch_model.bin")).unwrap(),
            "truncated",
        ),
        ("cut in its end records", good[..good.len() - 10].to_vec(), "truncated"),
        ("lying header", lying, "overlaps the next one"),
        ("evil", std::fs::read(hub("DiT-evil/transformer/diffusion_pytorch_model.bin")).unwrap(), "os.system"),
        ("empty", vec![], "truncated"),
        (
            "legacy torch.save",
            b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.".to_vec(),
            "legacy format",
        ),
    ];
    for (what, bytes, says) in cases {
        let Err(e) = try_bytes(what, bytes) else { panic!("{what}: loaded") };
        println!("{what}: {e}");
        assert!(e.to_string().contains(says), "{what}: {e}");
        assert!(matches!(e, Error::Format { .. }), "{what}: {e:?}");
    }
    // The release's .pt (real torch.save) and a zip written by Python's zipfile (no zip64 records) read the same way.
    let e = single(&FileRange(fixture("dit_formats/evil.pt")), &SingleOptions::default()).unwrap_err();
    assert!(e.to_string().contains("refuses the pickle global `os.system`"), "{e}");
    let conv = ConvertOptions { heads: Some(1), input_size: Some(16), ..Default::default() };
    let pt = fixture("dit_formats/official.pt");
    let got = single(&FileRange(pt.clone()), &SingleOptions { convert: conv.clone(), ..Default::default() }).unwrap();
    assert!(got == converted(&pt, &conv), "official.pt read in place differs from `dit convert`");
    assert!(try_bytes("intact", good).is_ok());
}

#[test]
fn dit_sample_on_the_pipeline_folder_matches_the_sampler_references() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let pipeline = hub("DiT-tiny");
    let pipeline = pipeline.to_str().unwrap();
    // The VAE named explicitly: the one the pipeline's vae/ holds, converted from its source.
    let vae = fixture("vae_small/diffusion_pytorch_model.safetensors");
    assert!(dit(&["convert", vae.to_str().unwrap(), "--out", &p("vae")]).ok);
    for case in ["ddpm", "ddim_all", "dpmpp2m"] {
        let bytes = std::fs::read(fixture(&format!("sampler_{case}.safetensors"))).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let desc: serde_json::Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["case"]).unwrap();
        let noise = st.tensor("noise").unwrap();
        let noise_values: Vec<f32> = bytemuck::pod_collect_to_vec(noise.data());
        dit_wasm::npy::write_f32(&tmp.path().join("noise.npy"), noise.shape(), &noise_values).unwrap();
        let labels: Vec<i32> = bytemuck::pod_collect_to_vec(st.tensor("labels").unwrap().data());
        let want: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("out").unwrap().data());
        let s = |k: &str| desc[k].as_str().unwrap().to_string();
        let (cfg, steps, sampler, channels) = (s("cfg"), s("steps"), s("sampler"), s("cfg_channels"));
        let mut args: Vec<String> = vec!["sample".into(), "--model".into(), pipeline.into()];
        for l in &labels {
            args.extend(["--class".into(), l.to_string()]);
        }
        for (k, v) in [("--cfg", &cfg), ("--steps", &steps), ("--sampler", &sampler), ("--cfg-channels", &channels)] {
            args.extend([k.to_string(), v.clone()]);
        }
        args.extend(["--noise", &p("noise.npy"), "--latent-out", &p("z.npy"), "--quiet"].map(String::from));
        let run = |extra: &[&str]| {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.extend_from_slice(extra);
            let o = dit(&a);
            assert!(o.ok, "dit {}: {}", a.join(" "), o.stderr);
        };
        run(&["--out", &p("pipeline.png")]);
        let got = dit_wasm::npy::read_f32(&tmp.path().join("z.npy")).unwrap();
        common::check(&format!("dit sample --model hub/DiT-tiny, {case} {desc}: final latent"), &got.data, &want, 1e-3);
        // The image decoded by the pipeline's own vae/ equals the one decoded by the VAE it was made from.
        run(&["--vae", &p("vae"), "--out", &p("explicit.png")]);
        assert_eq!(std::fs::read(p("pipeline.png")).unwrap(), std::fs::read(p("explicit.png")).unwrap());
    }
}

#[test]
fn folders_in_dit_info_and_convert_and_their_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let h = |n: &str| hub(n).to_str().unwrap().to_string();

    let info = dit(&["info", &h("DiT-tiny")]);
    assert!(info.ok, "{}", info.stderr);
    println!("{}", info.stdout);
    assert!(info.stdout.contains("kind:        Dit") && info.stdout.contains("kind:        VaeDecoder"));
    let info = dit(&["info", &h("DiT-tiny/vae")]);
    assert!(info.ok && info.stdout.contains("VaeDecoder"), "{}", info.stderr);

    // A pipeline converts into dit/ and vae/, the same as its sources.
    let o = dit(&["convert", &h("DiT-tiny"), "--out", &p("pipeline")]);
    assert!(o.ok, "{}", o.stderr);
    let o = dit(&["convert", &h("DiT-tiny/transformer"), "--out", &p("component")]);
    assert!(o.ok, "{}", o.stderr);
    let src = fixture("dit_p2_hd64.safetensors");
    assert!(dit(&["convert", src.to_str().unwrap(), "--heads", "2", "--out", &p("source")]).ok);
    for d in ["pipeline/dit", "component"] {
        let shard = |dir: &str| std::fs::read(tmp.path().join(dir).join("model-00001-of-00001.safetensors")).unwrap();
        assert!(shard(d) == shard("source"), "{d} differs from the converted source");
    }
    assert!(tmp.path().join("pipeline/vae/model.safetensors.index.json").is_file());

    let out = p("x.png");
    for cmd in [&["info"][..], &["convert", "--out", &p("o")][..], &["sample", "--class", "1", "--out", &out][..]] {
        let with = |model: &str| -> Vec<String> {
            let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            if a[0] == "sample" {
                a.extend(["--model".to_string(), model.to_string()]);
            } else {
                a.insert(1, model.to_string());
            }
            a
        };
        let fails = |model: &str, what: &str| {
            let a = with(model);
            fails_with(&a.iter().map(String::as_str).collect::<Vec<_>>(), what);
        };
        fails(&h("PixArt-tiny"), "PixArtTransformer2DModel (norm_type ada_norm_single), not DiT");
        fails(&h("PixArt-tiny/transformer"), "PixArtTransformer2DModel (norm_type ada_norm_single)");
        fails(&h("DiT-truncated"), "truncated");
        fails(&h("DiT-evil"), "refuses the pickle global `os.system`");
    }
    fails_with(&["convert", &h(""), "--out", &p("o")], "a folder with no checkpoint to convert");
    fails_with(&["info", &h("")], "no model.safetensors.index.json here");
    assert!(!tmp.path().join("o").exists(), "a failed convert writes nothing");
}
