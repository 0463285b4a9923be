//! WebGPU's default limits (`LimitsMode::Default`: the package's `limits: "default"`, the page's `?limits=default`,
//! `dit --limits default`), as Safari and many Android devices give them: the device is opened with exactly those
//! limits, only kernel configs that fit them are offered, DiT-XL/2's shapes at 256 and 512 px and a 512 px VAE decode
//! run and match a device opened with the adapter's limits, and a model that cannot fit is refused with the limit
//! before its weights are read. The full-size runs (DiT-XL/2 at depth 28, the SD VAE at 512 px) are in
//! tests/full_size.rs, ignored by default for their time on lavapipe.
// Native only (a GPU through wgpu's native backends, files); the browser side is tests/e2e/limits.test.mjs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{label, max_abs, max_diff};
use dit_wasm::arch::{dit_tensors, vae_tensors, VaeConfig};
use dit_wasm::gpu::{AdapterReport, LimitsMode};
use dit_wasm::loader::{self, Origin, Planned};
use dit_wasm::model::Vae;
use dit_wasm::ops::{self, WG_TILES};
use dit_wasm::{Dit, DitConfig, Error, Gpu, GpuOptions, GpuWeights};
use std::path::Path;

/// WebGPU's default limits (the spec's "Limits" table).
const BINDING: u64 = 128 << 20;
const BUFFER: u64 = 256 << 20;
const WORKGROUP_STORAGE: u32 = 16 << 10;
const INVOCATIONS: u32 = 256;
const STORAGE_BUFFERS: u32 = 8;
const TEXTURE_2D: u32 = 8192;

fn open(limits: LimitsMode) -> Gpu {
    pollster::block_on(Gpu::new(&GpuOptions { limits, ..Default::default() }))
        .expect("no GPU adapter: install mesa-vulkan-drivers (lavapipe) or run on a machine with a GPU")
}

/// The device was opened with WebGPU's defaults: its report and wgpu's device limits both say so.
fn assert_defaults(gpu: &Gpu) {
    let r = &gpu.report;
    let d = gpu.device.limits();
    assert_eq!(r.limits, LimitsMode::Default);
    for (what, report, device, want) in [
        ("maxStorageBufferBindingSize", r.max_storage_buffer_binding_size, d.max_storage_buffer_binding_size, BINDING),
        ("maxBufferSize", r.max_buffer_size, d.max_buffer_size, BUFFER),
    ] {
        assert_eq!((report, device), (want, want), "{what}");
    }
    for (what, report, device, want) in [
        (
            "maxComputeWorkgroupStorageSize",
            r.max_compute_workgroup_storage_size,
            d.max_compute_workgroup_storage_size,
            WORKGROUP_STORAGE,
        ),
        (
            "maxComputeInvocationsPerWorkgroup",
            r.max_compute_invocations_per_workgroup,
            d.max_compute_invocations_per_workgroup,
            INVOCATIONS,
        ),
        (
            "maxStorageBuffersPerShaderStage",
            r.max_storage_buffers_per_shader_stage,
            d.max_storage_buffers_per_shader_stage,
            STORAGE_BUFFERS,
        ),
        ("maxTextureDimension2D", r.max_texture_dimension_2d, d.max_texture_dimension_2d, TEXTURE_2D),
    ] {
        assert_eq!((report, device), (want, want), "{what}");
    }
}

fn limits_line(r: &AdapterReport) -> String {
    format!(
        "{} limits: binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations, {} storage buffers, \
         textures {}",
        r.limits.name(),
        r.max_storage_buffer_binding_size >> 20,
        r.max_buffer_size >> 20,
        r.max_compute_workgroup_storage_size >> 10,
        r.max_compute_invocations_per_workgroup,
        r.max_storage_buffers_per_shader_stage,
        r.max_texture_dimension_2d
    )
}

/// Asserts `max |a - b| <= bound` and prints the figures either way.
fn same_within(what: &str, a: &[f32], b: &[f32], bound: f32) {
    let d = max_diff(a, b);
    println!("{what}: max|diff| = {d:.3e} (bound {bound:.0e}), max|out| = {:.3e}", max_abs(b));
    assert!(d <= bound, "{what}: max|diff| {d} > {bound}");
}

#[test]
fn the_device_is_opened_with_webgpus_default_limits() {
    let adapter = open(LimitsMode::Adapter);
    let default = open(LimitsMode::Default);
    println!("{}: {}", label(&adapter), limits_line(&adapter.report));
    println!("{}: {}", label(&default), limits_line(&default.report));
    assert_eq!(adapter.report.limits, LimitsMode::Adapter);
    assert_defaults(&default);
    // A binding over the limit is refused with an error that names it.
    let err = default.storage("too large", BINDING + 16).map(|_| ()).unwrap_err();
    println!("{err}");
    assert!(matches!(err, Error::Limit { need, limit: BINDING, .. } if need == BINDING + 16));
    assert!(err.to_string().contains("maxStorageBufferBindingSize at WebGPU's default limits"), "{err}");
    assert!(default.storage("fits", BINDING).is_ok());
    default.check().unwrap();
    assert_eq!(LimitsMode::parse("default").unwrap(), LimitsMode::Default);
    assert!(matches!(LimitsMode::parse("max"), Err(Error::Input(_))));
}

/// The workgroup linear tiles and the attention splits are offered only where they fit the device: the invocations
/// and workgroup memory of each, and a split-K scratch within the storage binding limit. At WebGPU's defaults every
/// tile fits its workgroup limits (the scratch of split-K 4 on DiT-XL/2's MLP at 512 px, 151 MB, does not); a device
/// with less (WebGPU's compatibility mode: 128 invocations) loses the 256-invocation tiles.
#[test]
fn only_kernel_configs_that_fit_the_limits_are_offered() {
    let gpu = open(LimitsMode::Default);
    assert_defaults(&gpu);
    let r = &gpu.report;
    for (i, t) in WG_TILES.iter().enumerate() {
        assert!(t.threads() <= INVOCATIONS && t.shared_bytes() <= WORKGROUP_STORAGE, "{t}");
        assert_eq!(ops::linear_wg_fits(&gpu, i, 512, 4608), t.f16_sums == 0 || gpu.uses_f16(), "{t}");
    }
    for i in 0..ops::ATTENTION_SPLITS.len() {
        assert!(ops::attention_split_fits(&gpu, i));
    }
    // DiT-XL/2 at 512 px, batch 2: fc1 is [2048, 4608]; split-K 4 needs 4 x 2048 x 4608 x 4 bytes = 144 MiB.
    let split4 = WG_TILES.iter().position(|t| t.splits == 4 && t.f16_sums == 0).unwrap();
    assert!(!ops::linear_wg_fits(&gpu, split4, 2048, 4608));
    assert!(ops::linear_wg_fits(&gpu, split4, 512, 4608));
    let big = AdapterReport { max_storage_buffer_binding_size: 1 << 30, ..r.clone() };
    assert!(ops::wg_tile_fits(&big, false, &WG_TILES[split4], 2048, 4608));
    // Fewer invocations or less workgroup memory than the tiles need.
    let compat = AdapterReport { max_compute_invocations_per_workgroup: 128, ..r.clone() };
    let small = AdapterReport { max_compute_workgroup_storage_size: 8 << 10, ..r.clone() };
    let mut offered = vec![];
    for t in WG_TILES.iter().filter(|t| t.f16_sums == 0) {
        let (c, s) = (ops::wg_tile_fits(&compat, false, t, 512, 1152), ops::wg_tile_fits(&small, false, t, 512, 1152));
        assert_eq!(c, t.threads() <= 128, "{t}");
        assert_eq!(s, t.shared_bytes() <= 8 << 10, "{t}");
        offered.push(format!("{t}: {}{}", if c { "c" } else { "-" }, if s { "s" } else { "-" }));
    }
    println!("f32 tiles offered at 128 invocations (c) / 8 KiB workgroup memory (s):\n  {}", offered.join("\n  "));
    assert!(
        offered.iter().any(|o| o.ends_with("-s") || o.ends_with("c-")),
        "a limit that removes no tile tests nothing"
    );
}

/// DiT-XL/2's width, heads and patch (every linear, attention and norm shape of the full model, at 256 and 512 px)
/// at depth 2: the full 28 blocks repeat these shapes (tests/full_size.rs runs them). Random non-zero weights; the
/// device at WebGPU's default limits must give what the device at the adapter's limits gives.
#[test]
fn dit_xl2_shapes_at_default_limits_match_the_adapter_limits() {
    let cfg = DitConfig { depth: 2, ..DitConfig::preset("XL/2", 256).unwrap() };
    let mut outs = vec![];
    for limits in [LimitsMode::Default, LimitsMode::Adapter] {
        let gpu = open(limits);
        if limits == LimitsMode::Default {
            assert_defaults(&gpu);
        }
        let w = GpuWeights::random(&gpu, &dit_tensors(&cfg), 3).unwrap();
        let dit = Dit::load(&gpu, cfg.clone(), w).unwrap();
        let mut per_res = vec![];
        for latent in [32, 64] {
            Dit::check_fit(&gpu.report, &cfg, 2, latent).unwrap();
            let plan = dit.plan(&gpu, 2, latent).unwrap();
            let x = common::random(latent as u64, plan.x.numel(), 1.5);
            let out = pollster::block_on(plan.forward(&gpu, &x, &[999.0, 250.0], &[207, 1000])).unwrap();
            gpu.check().unwrap();
            println!(
                "{} ({}): XL/2 shapes, depth 2, {} px: {} outputs, max|out| {:.3}",
                label(&gpu),
                gpu.report.limits.name(),
                latent * 8,
                out.len(),
                max_abs(&out)
            );
            assert!(out.iter().all(|v| v.is_finite()) && max_abs(&out) > 0.0);
            per_res.push(out);
        }
        outs.push(per_res);
    }
    for (i, px) in [256, 512].into_iter().enumerate() {
        same_within(&format!("XL/2 shapes at {px} px, default vs adapter limits"), &outs[0][i], &outs[1][i], 1e-5);
    }
}

/// A 4-level VAE decoder (the SD VAE's structure, narrower) decoding a 64x64 latent to 512x512 at WebGPU's default
/// limits matches the decode at the adapter's limits; the SD VAE itself at 512 px is planned there (its 256-channel
/// 512x512 activations in 2 parts of 128 MiB) and is checked from its config; its decode is in tests/full_size.rs.
#[test]
fn vae_512_at_default_limits_matches_the_adapter_limits() {
    let cfg = VaeConfig {
        block_out_channels: vec![16, 32, 32, 32],
        layers_per_block: 1,
        norm_num_groups: 4,
        ..VaeConfig::sd()
    };
    let latent = common::random(11, 4 * 64 * 64, 1.0);
    let mut images = vec![];
    for limits in [LimitsMode::Default, LimitsMode::Adapter] {
        let gpu = open(limits);
        let w = GpuWeights::from_values(&gpu, &vae_tensors(&cfg), |p| common::det_tensor(&p.name, &p.shape)).unwrap();
        let vae = Vae::load(&gpu, cfg.clone(), w).unwrap();
        let plan = vae.plan(&gpu, 64, 64).unwrap();
        let img = pollster::block_on(plan.decode(&gpu, &latent)).unwrap();
        gpu.check().unwrap();
        println!(
            "{} ({}): 64x64 -> 512x512, {} dispatches",
            label(&gpu),
            gpu.report.limits.name(),
            plan.dispatches().len()
        );
        assert!(img.iter().all(|v| v.is_finite()) && max_abs(&img) > 0.0);
        images.push(img);
    }
    same_within("narrow VAE 64x64 -> 512x512, default vs adapter limits", &images[0], &images[1], 1e-5);

    let gpu = open(LimitsMode::Default);
    assert_defaults(&gpu);
    let sd = VaeConfig::sd();
    Vae::check_fit(&gpu.report, &sd, 64, 64).unwrap();
    let w = GpuWeights::from_values(&gpu, &vae_tensors(&sd), |p| common::det_tensor(&p.name, &p.shape)).unwrap();
    let vae = Vae::load(&gpu, sd, w).unwrap();
    let plan = vae.plan(&gpu, 64, 64).unwrap();
    gpu.check().unwrap();
    println!(
        "SD VAE at 512 px, default limits: {} dispatches, activations {} MiB in up to {} parts",
        plan.dispatches().len(),
        plan.activation_bytes >> 20,
        plan.max_parts
    );
    assert_eq!(plan.max_parts, 2);
}

/// A model directory's index alone (no shards) of the model `config`, as `kind` ("dit" or "vae-decoder").
fn index_only(dir: &Path, kind: &str, config: serde_json::Value) {
    let demo = if kind == "dit" { "models/demo/dit" } else { "models/demo/vae" };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(demo).join("model.safetensors.index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    index["metadata"]["config"] = config;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

fn limit_error(r: dit_wasm::Result<impl Sized>) -> String {
    match r {
        Err(e @ Error::Limit { .. }) => e.to_string(),
        Err(e) => panic!("expected a limit error, got: {e}"),
        Ok(_) => panic!("expected a limit error, got a model"),
    }
}

/// A model whose plan passes WebGPU's default storage binding is refused with an error naming the tensor and the
/// limit once its config is read, before any shard: an index with no shards beside it gives that error, not a
/// missing file. The check from the config agrees with the plan.
#[test]
fn a_model_that_cannot_fit_is_refused_before_its_weights_are_read() {
    let gpu = open(LimitsMode::Default);
    assert_defaults(&gpu);
    let tmp = tempfile::tempdir().unwrap();
    // DiT-XL/2 at 1024 px (latent 128): its MLP activation for one guided image is [8192, 4608] f32, 144 MiB.
    let xl = serde_json::to_value(DitConfig::preset("XL/2", 1024).unwrap()).unwrap();
    index_only(&tmp.path().join("xl1024"), "dit", xl);
    let dit_planned = Some(Planned::Dit { batch: loader::FIRST_BATCH });
    let xl1024 = tmp.path().join("xl1024").display().to_string();
    let e = limit_error(pollster::block_on(loader::dit(&Origin::new(), &gpu, &xl1024, dit_planned)));
    println!("{e}");
    assert!(e.contains("`mlp` [8192, 4608]") && e.contains("maxStorageBufferBindingSize"), "{e}");
    assert_eq!(loader::FIRST_BATCH, dit_wasm::pipeline::dit_batch(1, dit_wasm::pipeline::DEFAULT_CFG_SCALE));
    // Unchecked, the same directory fails on its first missing shard: the check came before any.
    let unchecked = pollster::block_on(loader::dit(&Origin::new(), &gpu, &xl1024, None));
    assert!(!matches!(unchecked, Err(Error::Limit { .. }) | Ok(_)));

    // The SD VAE at latent 128 needs its mid attention's scores [16384, 16384] f32 (1 GiB) in one binding.
    let sd = serde_json::to_value(VaeConfig::sd()).unwrap();
    index_only(&tmp.path().join("sd-vae"), "vae-decoder", sd);
    let planned = Some(Planned::Vae { latent: 128 });
    let sd_vae = tmp.path().join("sd-vae").display().to_string();
    let e = limit_error(pollster::block_on(loader::vae(&Origin::new(), &gpu, &sd_vae, planned)));
    println!("{e}");
    assert!(e.contains("VAE attention scores [16384, 16384]") && e.contains("maxStorageBufferBindingSize"), "{e}");
    // At 512 px it fits, and the load goes on to the (missing) shards.
    let planned = Some(Planned::Vae { latent: 64 });
    let r = pollster::block_on(loader::vae(&Origin::new(), &gpu, &sd_vae, planned));
    assert!(!matches!(r, Err(Error::Limit { .. }) | Ok(_)));

    // The config check and the plan agree: XL/2's width at depth 1 plans at 512 px and is refused at 1024 px.
    let cfg = DitConfig { depth: 1, ..DitConfig::preset("XL/2", 256).unwrap() };
    let dit = Dit::load(&gpu, cfg.clone(), GpuWeights::random(&gpu, &dit_tensors(&cfg), 5).unwrap()).unwrap();
    for latent in [64, 128] {
        let (checked, planned) = (Dit::check_fit(&gpu.report, &cfg, 2, latent), dit.plan(&gpu, 2, latent));
        println!("latent {latent}: config check {:?}, plan {:?}", checked.as_ref().err(), planned.as_ref().err());
        assert_eq!(checked.is_ok(), planned.is_ok(), "latent {latent}");
        assert_eq!(checked.is_ok(), latent == 64);
    }
}

/// `dit --limits default`: the GPU commands open the device with WebGPU's defaults, and a model that cannot fit them
/// ends `dit sample` with one line naming the limit, before its weights are read.
#[test]
fn the_cli_takes_limits_default() {
    let o = common::dit(&["gpu", "--limits", "default"]);
    assert!(o.ok, "{}", o.stderr);
    let report: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    println!("dit gpu --limits default: {report}");
    assert_eq!(report["limits"], "default");
    assert_eq!(report["max_storage_buffer_binding_size"], BINDING);
    assert_eq!(report["max_compute_workgroup_storage_size"], WORKGROUP_STORAGE);
    let o = common::dit(&["gpu"]);
    assert!(o.ok && o.stdout.contains("\"limits\": \"adapter\""), "{}", o.stderr);

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("xl1024");
    index_only(&model, "dit", serde_json::to_value(DitConfig::preset("XL/2", 1024).unwrap()).unwrap());
    let out = tmp.path().join("z.npy");
    let args = ["sample", "--model", model.to_str().unwrap(), "--class", "1", "--steps", "2", "--sampler", "ddim"];
    let args: Vec<&str> = args.into_iter().chain(["--out", out.to_str().unwrap(), "--limits", "default"]).collect();
    let line = common::fails_with(&args, "maxStorageBufferBindingSize at WebGPU's default limits");
    assert!(line.contains("DiT activation `mlp` [8192, 4608]"), "{line}");
    let o = common::dit(&["gpu", "--limits", "max"]);
    assert!(!o.ok && o.stderr.contains("adapter, default"), "{}", o.stderr);
}

/// One checkpoint read by byte ranges (a `.safetensors` here; Hub components and `.pt` files take the same path): the
/// check runs on the config planned from its header, before any range of tensor data is read.
#[test]
fn a_single_file_is_checked_before_its_tensor_data() {
    use dit_wasm::weights::single::{parse_location, FileRange};
    let gpu = open(LimitsMode::Default);
    let location = format!("{}#heads=2", common::fixture("dit_p2_hd64.safetensors").display());
    let (file, mut opts) = parse_location(&location).unwrap();
    // A batch whose activations pass 128 MiB (this DiT's own 16 tokens x 512 MLP features, 65536 times).
    opts.before_tensors = Planned::Dit { batch: 1 << 16 }.before_tensors(&gpu);
    let mut read = 0;
    let r = pollster::block_on(loader::from_single(&gpu, &FileRange(file.into()), &opts, |done, _| read = done));
    let e = limit_error(r);
    println!("{e}; tensor bytes read: {read}");
    assert!(e.contains("maxStorageBufferBindingSize"), "{e}");
    assert_eq!(read, 0);
    // Planned for one guided image, it loads.
    opts.before_tensors = Planned::Dit { batch: loader::FIRST_BATCH }.before_tensors(&gpu);
    let r = pollster::block_on(loader::from_single(&gpu, &FileRange(file.into()), &opts, |done, _| read = done));
    assert!(r.is_ok() && read > 0, "{:?}", r.err());
}
