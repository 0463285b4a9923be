//! Parity of the VAE kernels (conv, GroupNorm, softmax, matmul, layout) against the CPU references, on every weight
//! path (packed buffers, shader-f16 buffers, textures).
// Native only (a GPU through wgpu's native backends, files, processes); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{check, cpu, gpus, label, random, to_f16};
use dit_wasm::gpu::{Arena, Gpu, Tensor};
use dit_wasm::ops::{self, Conv2d, Epilogue};

fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    pollster::block_on(gpu.read_f32(t)).expect("readback")
}

#[test]
fn conv_3x3_with_upsample_residual_and_padded_channels() {
    for gpu in gpus() {
        // (n, ih, iw, cin, cout, k, upsample, residual): a non-square image with partial pixel tiles, Cout 3 padded
        // to 4 (the decoder's conv_out), the fused upsample, the fused residual, and a 1x1 conv.
        for &(n, ih, iw, cin, cout, k, up, with_res) in &[
            (2usize, 6usize, 5usize, 8usize, 12usize, 3usize, false, false),
            (1, 9, 7, 128, 3, 3, false, false),
            (1, 4, 3, 16, 36, 3, true, false),
            (2, 5, 5, 8, 8, 3, false, true),
            (1, 6, 6, 12, 8, 1, false, false),
        ] {
            let x = random(60, n * ih * iw * cin, 1.0);
            let w = to_f16(&random(61, cout * cin * k * k, 0.3));
            let b = to_f16(&random(62, cout, 0.5));
            let xt = Tensor::from_f32(&gpu, "x", &[n, ih, iw, cin], &x).unwrap();
            let wt = Tensor::from_f32_as_f16(&gpu, "w", &[cout, cin, k, k], &w).unwrap();
            let bt = Tensor::from_f32_as_f16(&gpu, "b", &[cout], &b).unwrap();
            let conv = Conv2d::new(&gpu, &wt, &bt).unwrap();
            let (oh, ow) = if up { (2 * ih, 2 * iw) } else { (ih, iw) };
            let cp = conv.cout_pad;
            let mut arena = Arena::new();
            let y = arena.f32(&gpu, "y", &[n, oh, ow, cp]).unwrap();
            let res_vals = random(63, n * oh * ow * cp, 1.0);
            let res = Tensor::from_f32(&gpu, "res", &[n, oh, ow, cp], &res_vals).unwrap();
            gpu.run([&ops::conv2d(&gpu, &xt, &conv, &y, up, with_res.then_some(&res)).unwrap()]);
            let want = cpu::conv2d_nhwc(&x, &w, &b, n, ih, iw, cin, cout, k, up);
            let got = read(&gpu, &y);
            // Compare the real channels; padded ones must be exactly zero (+ residual).
            let mut real = vec![];
            let mut padded_ok = true;
            for (i, v) in got.iter().enumerate() {
                let (pix, ch) = (i / cp, i % cp);
                let r = if with_res { res_vals[i] } else { 0.0 };
                if ch < cout {
                    real.push(v - r);
                } else {
                    padded_ok &= *v == r;
                }
                let _ = pix;
            }
            assert!(padded_ok, "padded output channels must be zero");
            let what =
                format!("{} conv {k}x{k} {cin}->{cout} {n}x{ih}x{iw} upsample={up} residual={with_res}", label(&gpu));
            check(&what, &real, &want, 1e-5);
        }
    }
}

#[test]
fn group_norm_with_and_without_silu() {
    for gpu in gpus().into_iter().take(1) {
        let (n, hw, c, groups) = (2usize, 37usize, 64usize, 16usize);
        let x: Vec<f32> = random(70, n * hw * c, 2.0).iter().map(|v| v + 3.0).collect();
        let gamma = to_f16(&random(71, c, 1.0));
        let beta = to_f16(&random(72, c, 1.0));
        let xt = Tensor::from_f32(&gpu, "x", &[n, hw, c], &x).unwrap();
        let gt = Tensor::from_f32_as_f16(&gpu, "g", &[c], &gamma).unwrap();
        let bt = Tensor::from_f32_as_f16(&gpu, "b", &[c], &beta).unwrap();
        let mut arena = Arena::new();
        let stats = arena.f32(&gpu, "stats", &[n * groups * 2]).unwrap();
        let y = arena.f32(&gpu, "y", &[n, hw, c]).unwrap();
        for silu in [false, true] {
            let norm = ops::GroupNorm { gamma: &gt, beta: &bt, groups, silu };
            gpu.run(&ops::group_norm(&gpu, &norm, &xt, &stats, &y).unwrap());
            let want = cpu::group_norm_nhwc(&x, &gamma, &beta, n, c, groups, 1e-6, silu);
            check(&format!("{} group_norm silu={silu}", label(&gpu)), &read(&gpu, &y), &want, 1e-5);
        }
    }
}

#[test]
fn softmax_matmul_and_layout() {
    for gpu in gpus() {
        let (m, n, k) = (70usize, 36usize, 128usize);
        let a = random(80, m * k, 1.0);
        let b = random(81, n * k, 1.0);
        let at = Tensor::from_f32(&gpu, "a", &[m, k], &a).unwrap();
        let bt = Tensor::from_f32(&gpu, "b", &[n, k], &b).unwrap();
        let mut arena = Arena::new();
        let y = arena.f32(&gpu, "y", &[m, n]).unwrap();
        gpu.run(&ops::matmul(&gpu, &at, &bt, &y, Epilogue::Bias).unwrap());
        let zero = vec![0f32; n];
        let prod = cpu::linear(&a, &b, &zero, m, n, k);
        check(&format!("{} matmul {m}x{k} . ({n}x{k})^T", label(&gpu)), &read(&gpu, &y), &prod, 1e-5);

        gpu.run([&ops::softmax_rows(&gpu, &y, 0.125).unwrap()]);
        check(&format!("{} softmax rows", label(&gpu)), &read(&gpu, &y), &cpu::softmax_rows(&prod, n, 0.125), 1e-5);

        let yt = arena.f32(&gpu, "yt", &[n, m]).unwrap();
        gpu.run([&ops::transpose(&gpu, &y, &yt).unwrap()]);
        let yv = read(&gpu, &y);
        let want: Vec<f32> = (0..n * m).map(|i| yv[(i % m) * n + i / m]).collect();
        check("transpose", &read(&gpu, &yt), &want, 0.0);

        let lat = random(82, 2 * 4 * 3 * 5, 1.0);
        let lt = Tensor::from_f32(&gpu, "lat", &[2, 4, 3, 5], &lat).unwrap();
        let nhwc = arena.f32(&gpu, "nhwc", &[2, 3, 5, 4]).unwrap();
        gpu.run([&ops::nchw_to_nhwc(&gpu, &lt, &nhwc, 2.0).unwrap()]);
        let want: Vec<f32> = (0..lat.len())
            .map(|i| {
                let (c, x, yy, nn) = (i % 4, (i / 4) % 5, (i / 20) % 3, i / 60);
                lat[((nn * 4 + c) * 3 + yy) * 5 + x] * 2.0
            })
            .collect();
        check("nchw_to_nhwc", &read(&gpu, &nhwc), &want, 0.0);
    }
}
