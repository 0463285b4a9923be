//! Plain CPU references for every kernel, written straight from the formulas in f64 where it matters. The tests
//! compare the kernels against these (natively through `common`, in the browser tests through a `#[path]` module).

/// tanh-approximated GELU: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())) as f32
}

pub fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + (-x).exp())) as f32
}

/// `x [m, k] * w[n, k]^T + b[n]` accumulated in f64.
pub fn linear(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = b[j] as f64;
            for l in 0..k {
                acc += x[i * k + l] as f64 * w[j * k + l] as f64;
            }
            y[i * n + j] = acc as f32;
        }
    }
    y
}

/// LayerNorm without affine (biased variance) then `* (1 + scale[s]) + shift[s]`, s = row / tokens;
/// shift/scale are [batch, d].
pub fn layernorm_modulate(x: &[f32], shift: &[f32], scale: &[f32], d: usize, tokens: usize, eps: f64) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    for (r, row) in x.chunks(d).enumerate() {
        let s = r / tokens;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        for c in 0..d {
            let v = (row[c] as f64 - mean) * rstd;
            y[r * d + c] = (v * (1.0 + scale[s * d + c] as f64) + shift[s * d + c] as f64) as f32;
        }
    }
    y
}

/// Multi-head attention for qkv [batch * tokens, 3d] laid out (3, heads, hd); returns [batch * tokens, d].
pub fn attention(qkv: &[f32], batch: usize, tokens: usize, heads: usize, d: usize) -> Vec<f32> {
    let hd = d / heads;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut out = vec![0f32; batch * tokens * d];
    let at =
        |b: usize, t: usize, s: usize, h: usize, j: usize| qkv[(b * tokens + t) * 3 * d + s * d + h * hd + j] as f64;
    let mut scores = vec![0f64; tokens];
    for b in 0..batch {
        for h in 0..heads {
            for t in 0..tokens {
                for (s, sc) in scores.iter_mut().enumerate() {
                    *sc = (0..hd).map(|j| at(b, t, 0, h, j) * at(b, s, 1, h, j)).sum::<f64>() * scale;
                }
                let mx = scores.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                for j in 0..hd {
                    let v: f64 = (0..tokens).map(|s| (scores[s] - mx).exp() * at(b, s, 2, h, j)).sum();
                    out[(b * tokens + t) * d + h * hd + j] = (v / z) as f32;
                }
            }
        }
    }
    out
}

/// Sinusoidal timestep features `[cos(t f), sin(t f)]`, `f_i = exp(-ln(max_period) i / half)`, in f64.
pub fn timestep_freqs(t: &[f32], dim: usize, max_period: f64) -> Vec<f32> {
    let half = dim / 2;
    let mut out = vec![0f32; t.len() * dim];
    for (n, &tv) in t.iter().enumerate() {
        for i in 0..half {
            let f = (-(max_period.ln()) * i as f64 / half as f64).exp();
            let a = tv as f64 * f;
            out[n * dim + i] = a.cos() as f32;
            out[n * dim + half + i] = a.sin() as f32;
        }
    }
    out
}

/// latent [n, c, h, w] -> patches [n*T, c*p*p] in (channel, ky, kx) order, tokens row-major over the grid.
pub fn patchify(x: &[f32], n: usize, c: usize, h: usize, w: usize, p: usize) -> Vec<f32> {
    let (gh, gw) = (h / p, w / p);
    let mut out = Vec::with_capacity(x.len());
    for b in 0..n {
        for r in 0..gh {
            for col in 0..gw {
                for ch in 0..c {
                    for ky in 0..p {
                        for kx in 0..p {
                            out.push(x[((b * c + ch) * h + r * p + ky) * w + col * p + kx]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// tokens [n*T, p*p*c] -> image [n, c, h, w].
pub fn unpatchify(y: &[f32], n: usize, c: usize, h: usize, w: usize, p: usize) -> Vec<f32> {
    let gw = w / p;
    let t = (h / p) * gw;
    let mut out = vec![0f32; y.len()];
    for b in 0..n {
        for ch in 0..c {
            for hy in 0..h {
                for wx in 0..w {
                    let token = b * t + (hy / p) * gw + wx / p;
                    let col = ((hy % p) * p + wx % p) * c + ch;
                    out[((b * c + ch) * h + hy) * w + wx] = y[token * p * p * c + col];
                }
            }
        }
    }
    out
}

/// Convolution over NHWC x [n, ih, iw, cin] with PyTorch weights w [cout, cin, k, k], stride 1, zero padding k/2;
/// with `upsample` the input is first upsampled x2 (nearest). Returns [n, oh, ow, cout].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_nhwc(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    n: usize,
    ih: usize,
    iw: usize,
    cin: usize,
    cout: usize,
    k: usize,
    upsample: bool,
) -> Vec<f32> {
    let (oh, ow) = if upsample { (2 * ih, 2 * iw) } else { (ih, iw) };
    let pad = (k / 2) as isize;
    let mut y = vec![0f32; n * oh * ow * cout];
    for b_ in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for co in 0..cout {
                    let mut acc = b[co] as f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let (iy, ix) = (oy as isize + ky as isize - pad, ox as isize + kx as isize - pad);
                            if iy < 0 || ix < 0 || iy >= oh as isize || ix >= ow as isize {
                                continue;
                            }
                            let (sy, sx) =
                                if upsample { (iy as usize / 2, ix as usize / 2) } else { (iy as usize, ix as usize) };
                            for ci in 0..cin {
                                acc += w[((co * cin + ci) * k + ky) * k + kx] as f64
                                    * x[((b_ * ih + sy) * iw + sx) * cin + ci] as f64;
                            }
                        }
                    }
                    y[((b_ * oh + oy) * ow + ox) * cout + co] = acc as f32;
                }
            }
        }
    }
    y
}

/// GroupNorm over NHWC x [n, hw, c] with affine, then SiLU if `silu`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_nhwc(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    n: usize,
    c: usize,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Vec<f32> {
    let hw = x.len() / (n * c);
    let cpg = c / groups;
    let mut y = vec![0f32; x.len()];
    for b in 0..n {
        for g in 0..groups {
            let vals: Vec<f64> = (0..hw)
                .flat_map(|p| (0..cpg).map(move |j| (p, g * cpg + j)))
                .map(|(p, ch)| x[(b * hw + p) * c + ch] as f64)
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            let rstd = 1.0 / (var + eps).sqrt();
            for p in 0..hw {
                for ch in g * cpg..(g + 1) * cpg {
                    let i = (b * hw + p) * c + ch;
                    let v = ((x[i] as f64 - mean) * rstd * gamma[ch] as f64 + beta[ch] as f64) as f32;
                    y[i] = if silu { self::silu(v) } else { v };
                }
            }
        }
    }
    y
}

/// Row softmax of `scale * s`, s [rows, cols].
pub fn softmax_rows(s: &[f32], cols: usize, scale: f64) -> Vec<f32> {
    s.chunks(cols)
        .flat_map(|row| {
            let m = row.iter().map(|&v| v as f64 * scale).fold(f64::MIN, f64::max);
            let z: f64 = row.iter().map(|&v| (v as f64 * scale - m).exp()).sum();
            row.iter().map(move |&v| ((v as f64 * scale - m).exp() / z) as f32).collect::<Vec<_>>()
        })
        .collect()
}
