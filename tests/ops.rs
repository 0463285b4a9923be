//! Kernel parity: every op against its CPU reference (`common::cpu`), on both fp16 weight paths.
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{check, cpu, gpus, label, random, to_f16};
use dit_wasm::gpu::{Arena, DType, Gpu, Tensor, TuneKey};
use dit_wasm::ops::{self, AttentionKernel, Epilogue, Linear, LinearKernel, Weight};

fn run(gpu: &Gpu, d: &[dit_wasm::gpu::Dispatch]) {
    gpu.run(d);
}

fn one(d: dit_wasm::gpu::Dispatch) -> Vec<dit_wasm::gpu::Dispatch> {
    vec![d]
}

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    pollster::block_on(gpu.read_f32(t)).expect("readback")
}

fn layer(gpu: &Gpu, n: usize, k: usize, seed: u64) -> (Linear, Vec<f32>, Vec<f32>) {
    let w = to_f16(&random(seed, n * k, 0.5));
    let b = to_f16(&random(seed + 1, n, 0.5));
    let l = Linear::new(
        Tensor::from_f32_as_f16(gpu, "w", &[n, k], &w).unwrap(),
        Tensor::from_f32_as_f16(gpu, "b", &[n], &b).unwrap(),
    )
    .unwrap()
    .for_device(gpu)
    .unwrap();
    (l, w, b)
}

#[test]
fn linear_all_epilogues_every_kernel() {
    for gpu in gpus() {
        // (7, 12, 20) stays in a buffer on the texture path (K is not a multiple of 64); (35, 20, 192) is the demo
        // model's width (the plain texture kernel then runs 8 invocations per workgroup, 20 for 130 rows); (16500, 8, 128) passes the texture height limit, so the texture path splits it into chunks.
        for &(m, n, k) in &[(7usize, 12usize, 20usize), (64, 96, 128), (35, 20, 192), (130, 36, 256), (16500, 8, 128)] {
            let x = random(10, m * k, 1.0);
            let (l, w, b) = layer(&gpu, n, k, 11);
            let xt = Tensor::from_f32(&gpu, "x", &[m, k], &x).unwrap();
            let base = cpu::linear(&x, &w, &b, m, n, k);
            let texture = matches!(l.weight, Weight::Texture(..));
            // On the texture path Tiled is the subgroup kernel where the device has subgroups, Simple the plain one.
            // Buffer weights run every kernel: the production choice, the simple one, the register-tiled one and the
            // workgroup-memory kernel in each tile config (these shapes leave partial tiles in M, N and K).
            let mut kernels = vec![LinearKernel::Tiled, LinearKernel::Simple];
            if !texture {
                kernels.push(LinearKernel::Register);
                // The f16-arithmetic tiles have their own test (linear_f16_products_every_kernel).
                let f32_tiles = (0..ops::WG_TILES.len()).filter(|&i| ops::WG_TILES[i].f16_sums == 0);
                kernels.extend(f32_tiles.map(LinearKernel::Workgroup));
            }
            for kernel in kernels {
                let kname = match (texture, kernel, gpu.report.subgroups) {
                    (true, LinearKernel::Tiled, true) => "texture+subgroups".to_string(),
                    (true, _, _) => "texture".to_string(),
                    _ => format!("{kernel:?}"),
                };
                let tag = format!("{} linear {m}x{k}->{n} {kname}", label(&gpu));
                let mut arena = Arena::new();
                let y = arena.f32(&gpu, "y", &[m, n]).unwrap();

                for (name, epi, f) in [
                    ("bias", Epilogue::Bias, (|v| v) as fn(f32) -> f32),
                    ("gelu", Epilogue::Gelu, cpu::gelu_tanh),
                    ("silu", Epilogue::Silu, cpu::silu),
                ] {
                    run(&gpu, &ops::linear(&gpu, &xt, &l, &y, epi, kernel).unwrap());
                    let want: Vec<f32> = base.iter().map(|&v| f(v)).collect();
                    check(&format!("{tag} {name}"), &read(&gpu, &y), &want, 1e-5);
                }

                // Gated residual: y starts as a residual stream, gate rows are per sample of `tokens` rows.
                let tokens = if m % 7 == 0 { 7 } else { m / 2 };
                let batch = m / tokens;
                let stride = 3 * n;
                let gate = random(12, batch * stride, 1.0);
                let resid = random(13, m * n, 1.0);
                let gt = Tensor::from_f32(&gpu, "gate", &[batch, stride], &gate).unwrap();
                gpu.write(&y.buf, 0, bytemuck::cast_slice(&resid));
                let epi = Epilogue::GatedResidual { gate: &gt, tokens, offset: n };
                run(&gpu, &ops::linear(&gpu, &xt, &l, &y, epi, kernel).unwrap());
                let want: Vec<f32> =
                    (0..m * n).map(|i| resid[i] + gate[(i / n / tokens) * stride + n + i % n] * base[i]).collect();
                check(&format!("{tag} gated-residual"), &read(&gpu, &y), &want, 1e-5);

                // Per-token table (position embedding).
                let table = random(14, tokens * n, 1.0);
                let tt = Tensor::from_f32(&gpu, "table", &[tokens, n], &table).unwrap();
                run(&gpu, &ops::linear(&gpu, &xt, &l, &y, Epilogue::AddTable { table: &tt, tokens }, kernel).unwrap());
                let want: Vec<f32> = (0..m * n).map(|i| base[i] + table[((i / n) % tokens) * n + i % n]).collect();
                check(&format!("{tag} add-table"), &read(&gpu, &y), &want, 1e-5);
            }
        }
    }
}

#[test]
fn tuning_records_the_fastest_variant() {
    let gpu = &gpus()[0];
    assert_eq!(gpu.choice(&TuneKey::Linear { m: 64, k: 64, n: 32 }), None);
    let times = pollster::block_on(dit_wasm::tune::tune_linear(gpu, 64, 64, 32)).unwrap();
    assert_eq!(times.len(), ops::WG_TILES.len());
    // This device reads weights packed, so the f16-arithmetic tiles are not candidates.
    for (t, tile) in times.iter().zip(ops::WG_TILES) {
        assert_eq!(t.is_finite(), tile.f16_sums == 0, "{tile}: {t} ms");
        assert!(*t > 0.0, "{tile}: {t} ms");
    }
    let best = gpu.choice(&TuneKey::Linear { m: 64, k: 64, n: 32 }).expect("a tile was recorded");
    assert!(times.iter().all(|&t| t >= times[best]), "{times:?}, chose {best}");
    // Split-K scratch past the storage binding limit: those configs are not tried, nor used.
    let opts = dit_wasm::gpu::GpuOptions { max_storage_binding: Some(24 << 10), ..Default::default() };
    let capped = pollster::block_on(Gpu::new(&opts)).unwrap();
    let times = pollster::block_on(dit_wasm::tune::tune_linear(&capped, 64, 64, 64)).unwrap();
    for (t, tile) in times.iter().zip(ops::WG_TILES) {
        assert_eq!(t.is_finite(), tile.splits == 1 && (tile.f16_sums == 0 || capped.uses_f16()), "{tile}: {t} ms");
    }
    let chosen = capped.choice(&TuneKey::Linear { m: 64, k: 64, n: 64 }).unwrap();
    assert_eq!(ops::WG_TILES[chosen].splits, 1);
    assert!(!ops::linear_wg_fits(&capped, 8, 64, 64) && ops::linear_wg_fits(gpu, 8, 64, 64));
    let times = pollster::block_on(dit_wasm::tune::tune_attention(gpu, 1, 40, 2, 16)).unwrap();
    assert_eq!(times.len(), ops::ATTENTION_SPLITS.len());
    let best =
        gpu.choice(&TuneKey::Attention { batch: 1, tokens: 40, heads: 2, head_dim: 16 }).expect("a split was recorded");
    assert!(times.iter().all(|&t| t >= times[best]), "{times:?}, chose {best}");

    // The choices survive a new device on the same adapter through the cache file, and not onto another adapter key.
    use dit_wasm::tune::cache as tune_cache;
    let dir = std::env::temp_dir().join(format!("dit-tune-{}", std::process::id()));
    let file = dir.join("tuning.json");
    let _ = std::fs::remove_file(&file);
    tune_cache::save_to(&file, gpu);
    let fresh = &gpus()[0];
    assert_eq!(fresh.choice(&TuneKey::Attention { batch: 1, tokens: 40, heads: 2, head_dim: 16 }), None);
    tune_cache::load_from(&file, fresh);
    assert_eq!(fresh.choices(), gpu.choices());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&tune_cache::adapter_key(gpu)), "{text}");
    std::fs::write(&file, text.replace("dit-wasm ", "dit-wasm other-")).unwrap();
    let other = &gpus()[0];
    tune_cache::load_from(&file, other);
    assert!(other.choices().is_empty());
    std::fs::write(&file, "not json").unwrap();
    tune_cache::load_from(&file, other);
    assert!(other.choices().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bound for the kernels that multiply in f16, relative to max |reference| as `check` takes it. Rounding x to f16
/// alone moves each product by up to 2^-11 of itself; with the few f16 terms summed before each f32 add, the
/// measured error stays under 1e-3 of the largest output on these shapes.
const F16_PRODUCTS: f32 = 1e-3;

#[test]
fn linear_f16_products_every_kernel() {
    let Some(gpu) = common::f16_gpu() else { return };
    // The f16 kernels: the register-tiled one and every f16 workgroup tile (partial tiles in M, N and K, a split-K
    // slice that ends inside a step; K = 1152 is DiT-XL/2's width).
    let mut kernels = vec![LinearKernel::RegisterF16];
    kernels.extend((0..ops::WG_TILES.len()).filter(|&i| ops::WG_TILES[i].f16_sums > 0).map(LinearKernel::Workgroup));
    for &(m, n, k) in &[(7usize, 12usize, 20usize), (64, 96, 128), (130, 36, 256), (70, 68, 1152)] {
        // x as activations are: one sign, a wide range (LayerNorm outputs modulated, GELU outputs).
        let x = random(15, m * k, 3.0);
        let (l, w, b) = layer(&gpu, n, k, 16);
        let xt = Tensor::from_f32(&gpu, "x", &[m, k], &x).unwrap();
        let base = cpu::linear(&x, &w, &b, m, n, k);
        let y = Arena::new().f32(&gpu, "y", &[m, n]).unwrap();
        for &kernel in &kernels {
            let name = match kernel {
                LinearKernel::Workgroup(i) => format!("workgroup {}", ops::WG_TILES[i]),
                k => format!("{k:?}"),
            };
            let tag = format!("{} linear {m}x{k}->{n} {name}", label(&gpu));
            run(&gpu, &ops::linear(&gpu, &xt, &l, &y, Epilogue::Bias, kernel).unwrap());
            check(&format!("{tag} bias"), &read(&gpu, &y), &base, F16_PRODUCTS);
            run(&gpu, &ops::linear(&gpu, &xt, &l, &y, Epilogue::Gelu, kernel).unwrap());
            let want: Vec<f32> = base.iter().map(|&v| cpu::gelu_tanh(v)).collect();
            check(&format!("{tag} gelu"), &read(&gpu, &y), &want, F16_PRODUCTS);
        }
    }
    // Without shader-f16 (or on f32 operands) the f16 kernels are refused, not run.
    let packed = &gpus()[0];
    let (l, _, _) = layer(packed, 8, 16, 1);
    let x = Tensor::from_f32(packed, "x", &[4, 16], &random(1, 64, 1.0)).unwrap();
    let y = Tensor::from_f32(packed, "y", &[4, 8], &[0.0; 32]).unwrap();
    for &kernel in &kernels {
        match ops::linear(packed, &x, &l, &y, Epilogue::Bias, kernel) {
            Err(e) => assert!(e.to_string().contains("shader-f16"), "{e}"),
            Ok(_) => panic!("{kernel:?} ran without shader-f16"),
        }
    }
}

#[test]
fn linear_rejects_bad_shapes() {
    let gpu = &gpus()[0];
    let (l, _, _) = layer(gpu, 8, 12, 1);
    let x = Tensor::from_f32(gpu, "x", &[3, 16], &random(1, 48, 1.0)).unwrap();
    let y = Tensor::from_f32(gpu, "y", &[3, 8], &[0.0; 24]).unwrap();
    assert!(ops::linear(gpu, &x, &l, &y, Epilogue::Bias, LinearKernel::Tiled).is_err());
    let (l, _, _) = layer(gpu, 6, 16, 1);
    assert!(ops::linear(gpu, &x, &l, &y, Epilogue::Bias, LinearKernel::Tiled).is_err());
}

#[test]
fn layernorm_modulate_matches() {
    // D = 192 (a multiple of 64) takes the staged-texture kernel on the texture path, D = 144 the per-row buffer one.
    for (gpu, d) in gpus().iter().flat_map(|g| [(g, 144usize), (g, 192)]) {
        let (tokens, batch) = (5usize, 3usize);
        let rows = tokens * batch;
        // An offset mean and a wide range, as in a residual stream; the last sample has a variance near eps, where
        // 1e-6 and diffusers' 1e-5 differ.
        let x: Vec<f32> = random(20, rows * d, 3.0)
            .iter()
            .enumerate()
            .map(|(i, v)| if i >= 2 * tokens * d { v * 1e-3 } else { v + 5.0 })
            .collect();
        let stride = 6 * d;
        let modv = random(21, batch * stride, 1.0);
        let xt = Tensor::from_f32(gpu, "x", &[rows, d], &x).unwrap();
        let mt = Tensor::from_f32(gpu, "mod", &[batch, stride], &modv).unwrap();
        let y = Arena::new().f32(gpu, "y", &[rows, d]).unwrap();
        for (shift_off, scale_off) in [(0, d), (3 * d, 4 * d)] {
            run(gpu, &one(ops::layernorm_modulate(gpu, &xt, &mt, &y, tokens, shift_off, scale_off).unwrap()));
            let pick = |off: usize| -> Vec<f32> {
                (0..batch).flat_map(|s| modv[s * stride + off..s * stride + off + d].to_vec()).collect()
            };
            let want = cpu::layernorm_modulate(&x, &pick(shift_off), &pick(scale_off), d, tokens, 1e-6);
            check(
                &format!("{} layernorm_modulate D {d} offsets {shift_off}/{scale_off}", label(gpu)),
                &read(gpu, &y),
                &want,
                1e-5,
            );
        }
    }
}

#[test]
fn attention_matches_head_dims_64_and_72() {
    // T = 1024 is DiT-XL/2 at 512 px; T = 100, 300 and 37 exercise partial query and key tiles (37: a partial step of
    // 4 and of 8 keys in the texture kernels). Widths 192, 576 and 128
    // use the texture variant on the texture path; 144 does not qualify and falls back to the buffer kernel. Where the
    // adapter has subgroups, the texture path runs once with them and once without. The first device also runs both
    // storage-buffer kernels by name (one invocation per query; keys split across invocations; they read no
    // weights, so one device covers them), and T = 7 leaves some of the split kernel's invocations without keys.
    let mut devices = gpus();
    if devices.iter().any(|g| g.report.subgroups) {
        devices.push(common::texture_gpu_without_subgroups());
    }
    for (i, gpu) in devices.into_iter().enumerate() {
        let kernels: &[AttentionKernel] = if i == 0 {
            &[
                AttentionKernel::Auto,
                AttentionKernel::PerQuery,
                AttentionKernel::Split(0),
                AttentionKernel::Split(1),
                AttentionKernel::Split(2),
                AttentionKernel::Split(3),
            ]
        } else {
            &[AttentionKernel::Auto]
        };
        for &(batch, tokens, heads, hd) in &[
            (2usize, 100usize, 3usize, 64usize),
            (1, 1024, 8, 72),
            (2, 256, 2, 64),
            (1, 300, 2, 72),
            (2, 7, 2, 8),
            (2, 37, 2, 64),
        ] {
            let d = heads * hd;
            let qkv = random(30 + hd as u64, batch * tokens * 3 * d, 2.0);
            let qt = Tensor::from_f32(&gpu, "qkv", &[batch * tokens, 3 * d], &qkv).unwrap();
            let want = cpu::attention(&qkv, batch, tokens, heads, d);
            for &kernel in kernels {
                // The splits differ only in how work is divided; one of them covers the long sequence.
                if tokens > 300 && matches!(kernel, AttentionKernel::Split(i) if i > 0) {
                    continue;
                }
                let out = Arena::new().f32(&gpu, "out", &[batch * tokens, d]).unwrap();
                let disp = ops::attention_with(&gpu, &qt, &out, tokens, heads, kernel).unwrap();
                let kind = match (disp.stage.is_empty(), gpu.report.subgroups) {
                    (true, _) => format!("buffer {kernel:?}"),
                    (false, true) => "texture+subgroups".into(),
                    (false, false) => "texture".into(),
                };
                run(&gpu, &one(disp));
                let what = format!("{} attention ({kind}) N={batch} T={tokens} heads={heads} hd={hd}", label(&gpu));
                check(&what, &read(&gpu, &out), &want, 1e-5);
            }
        }
    }
}

#[test]
fn timestep_features_cos_first() {
    let gpu = &gpus()[0];
    let t = [0.0f32, 1.0, 250.5, 500.0, 999.0];
    let tt = Tensor::from_f32(gpu, "t", &[t.len()], &t).unwrap();
    let dummy = Tensor::from_f32_as_f16(gpu, "dummy", &[4], &[0.0; 4]).unwrap();
    let out = Arena::new().f32(gpu, "freqs", &[t.len(), ops::FREQ_DIM]).unwrap();
    run(gpu, &one(ops::timestep_freqs(gpu, &tt, &dummy, &out).unwrap()));
    let want = cpu::timestep_freqs(&t, ops::FREQ_DIM, ops::MAX_PERIOD as f64);
    // t = 0 gives exactly [1, ..., 1, 0, ..., 0]: cos comes first.
    let got = read(gpu, &out);
    assert_eq!(&got[..2], &[1.0, 1.0]);
    assert_eq!(got[ops::FREQ_DIM / 2], 0.0);
    // Arguments reach 999 rad, where one f32 ulp of the argument is 6e-5.
    check(&format!("{} timestep features", label(gpu)), &got, &want, 2e-4);
}

#[test]
fn condition_adds_label_row_including_null_class_and_blends() {
    for gpu in gpus() {
        let (rows, d) = (1001usize, 8usize);
        let table = to_f16(&random(40, rows * d, 1.0));
        // Plain classes (the null class among them) and blends of two rows, alpha 1 included.
        let labels = [
            ops::LabelMix::class(0),
            ops::LabelMix::class(7),
            ops::LabelMix::class(1000),
            ops::LabelMix::blend(3, 999, 0.3),
            ops::LabelMix::blend(5, 2, 1.0),
        ];
        let n = labels.len();
        let temb = random(41, n * d, 1.0);
        let tab = Tensor::from_f32_as_f16(&gpu, "table", &[rows, d], &table).unwrap();
        let lt = Tensor {
            buf: gpu.upload("labels", bytemuck::cast_slice(&labels)).unwrap(),
            shape: vec![n, ops::LABEL_WORDS],
            dtype: DType::U32,
        };
        let te = Tensor::from_f32(&gpu, "temb", &[n, d], &temb).unwrap();
        let out = Arena::new().f32(&gpu, "c", &[n, d]).unwrap();
        run(&gpu, &one(ops::condition(&gpu, &lt, &tab, &te, &out).unwrap()));
        let want: Vec<f32> = (0..n * d)
            .map(|i| {
                let m = labels[i / d];
                let row = |c: u32| table[c as usize * d + i % d] as f64;
                let y = (1.0 - m.alpha as f64) * row(m.a) + m.alpha as f64 * row(m.b);
                cpu::silu(temb[i] + y as f32)
            })
            .collect();
        check(&format!("{} condition", label(&gpu)), &read(&gpu, &out), &want, 1e-6);
    }
}

#[test]
fn patchify_and_unpatchify_match() {
    let gpu = &gpus()[0];
    for &(n, c, h, p) in &[(2usize, 4usize, 8usize, 2usize), (1, 8, 16, 4)] {
        let x = random(50, n * c * h * h, 1.0);
        let xt = Tensor::from_f32(gpu, "x", &[n, c, h, h], &x).unwrap();
        let t = (h / p) * (h / p);
        let mut arena = Arena::new();
        let patches = arena.f32(gpu, "patches", &[n * t, c * p * p]).unwrap();
        run(gpu, &one(ops::patchify(gpu, &xt, &patches, p).unwrap()));
        check(&format!("patchify {n}x{c}x{h}x{h} p{p}"), &read(gpu, &patches), &cpu::patchify(&x, n, c, h, h, p), 0.0);
        let img = arena.f32(gpu, "img", &[n, c, h, h]).unwrap();
        run(gpu, &one(ops::unpatchify(gpu, &patches, &img, p).unwrap()));
        let pt = read(gpu, &patches);
        check(&format!("unpatchify {n}x{c}x{h}x{h} p{p}"), &read(gpu, &img), &cpu::unpatchify(&pt, n, c, h, h, p), 0.0);
    }
}
