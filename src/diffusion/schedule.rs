//! The diffusion schedule of the DiT release (`diffusion/gaussian_diffusion.py`, `respace.py`), all in f64:
//! linear betas over 1000 steps, respacing to K steps, and the per-step coefficients of each sampler.

use crate::error::{Error, Result};

/// Training timesteps of DiT.
pub const NUM_TRAIN_STEPS: usize = 1000;
/// `linspace(1e-4, 0.02, 1000)`: the release's "linear" schedule (scaled for 1000 steps).
pub const BETA_START: f64 = 1e-4;
pub const BETA_END: f64 = 0.02;

/// The 1000 training betas, computed as numpy's `linspace` in f64.
pub fn linear_betas() -> Vec<f64> {
    let n = NUM_TRAIN_STEPS;
    let step = (BETA_END - BETA_START) / (n - 1) as f64;
    (0..n).map(|i| if i == n - 1 { BETA_END } else { BETA_START + i as f64 * step }).collect()
}

/// Python's `round`: to nearest, ties to even.
fn round_half_even(x: f64) -> usize {
    let r = x.round();
    let v = if (x - x.trunc()).abs() == 0.5 { 2.0 * (x / 2.0).round() } else { r };
    v as usize
}

/// Which training timesteps a K-step sampler uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spacing {
    /// "K": K evenly spaced steps over 0..999 with fractional stride, rounded half to even (`space_timesteps`).
    Even(usize),
    /// "ddimK": `range(0, 1000, i)` for the smallest stride i giving exactly K steps.
    Ddim(usize),
}

impl Spacing {
    /// Parses "250" or "ddim50".
    pub fn parse(s: &str) -> Result<Spacing> {
        let bad = || Error::input(format!("timestep spacing `{s}`: use a step count (250) or ddimK (ddim50)"));
        if let Some(k) = s.strip_prefix("ddim") {
            Ok(Spacing::Ddim(k.parse().map_err(|_| bad())?))
        } else {
            Ok(Spacing::Even(s.parse().map_err(|_| bad())?))
        }
    }

    /// The used training timesteps, ascending.
    pub fn timesteps(self) -> Result<Vec<usize>> {
        let n = NUM_TRAIN_STEPS;
        match self {
            Spacing::Even(k) if k == 0 || k > n => {
                Err(Error::input(format!("steps must be between 1 and {n}, got {k}")))
            }
            Spacing::Even(1) => Ok(vec![0]),
            Spacing::Even(k) => {
                let stride = (n - 1) as f64 / (k - 1) as f64;
                let mut cur = 0.0;
                let mut out = Vec::with_capacity(k);
                for _ in 0..k {
                    out.push(round_half_even(cur));
                    cur += stride;
                }
                out.dedup();
                if out.len() != k {
                    return Err(Error::input(format!("{k} steps cannot be spaced evenly over {n}")));
                }
                Ok(out)
            }
            Spacing::Ddim(k) => (1..n)
                .find(|&i| n.div_ceil(i) == k)
                .map(|i| (0..n).step_by(i).collect())
                .ok_or_else(|| Error::input(format!("ddim{k}: no stride gives exactly {k} steps; pick another count"))),
        }
    }
}

/// A respaced schedule: the used timesteps and every coefficient recomputed from the respaced betas, in f64.
/// Index k = 0 is the least noisy step; sampling runs k = K-1 down to 0.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Original timestep s_k fed to the model.
    pub timesteps: Vec<usize>,
    /// b'_k = 1 - abar(s_k) / abar(s_{k-1}).
    pub betas: Vec<f64>,
    /// a'_k = prod(1 - b'_0..k) (= abar(s_k)).
    pub alphas_cumprod: Vec<f64>,
}

impl Schedule {
    pub fn new(spacing: Spacing) -> Result<Schedule> {
        let timesteps = spacing.timesteps()?;
        let betas_full = linear_betas();
        let mut abar = 1.0;
        let mut abar_full = Vec::with_capacity(NUM_TRAIN_STEPS);
        for b in &betas_full {
            abar *= 1.0 - b;
            abar_full.push(abar);
        }
        let mut last = 1.0;
        let mut betas = Vec::with_capacity(timesteps.len());
        for &t in &timesteps {
            betas.push(1.0 - abar_full[t] / last);
            last = abar_full[t];
        }
        // Recomputed from the respaced betas, as the release's GaussianDiffusion does.
        let mut alphas_cumprod = Vec::with_capacity(betas.len());
        let mut a = 1.0;
        for b in &betas {
            a *= 1.0 - b;
            alphas_cumprod.push(a);
        }
        Ok(Schedule { timesteps, betas, alphas_cumprod })
    }

    pub fn len(&self) -> usize {
        self.timesteps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timesteps.is_empty()
    }

    /// a'_{k-1}, with a'_{-1} = 1.
    pub fn alphas_cumprod_prev(&self, k: usize) -> f64 {
        if k == 0 {
            1.0
        } else {
            self.alphas_cumprod[k - 1]
        }
    }

    fn posterior_variance(&self, k: usize) -> f64 {
        let (b, a, ap) = (self.betas[k], self.alphas_cumprod[k], self.alphas_cumprod_prev(k));
        b * (1.0 - ap) / (1.0 - a)
    }

    /// Coefficients of one DDPM step (learned-range variance, no clipping).
    pub fn ddpm(&self, k: usize) -> DdpmCoeffs {
        let (b, a, ap) = (self.betas[k], self.alphas_cumprod[k], self.alphas_cumprod_prev(k));
        // posterior_log_variance_clipped: log of the posterior variance, with step 0 using step 1's value
        // (the variance at step 0 is 0).
        let min_log = if k == 0 {
            if self.len() > 1 {
                self.posterior_variance(1).ln()
            } else {
                f64::MIN_POSITIVE.ln()
            }
        } else {
            self.posterior_variance(k).ln()
        };
        DdpmCoeffs {
            sqrt_recip_alphas_cumprod: (1.0 / a).sqrt(),
            sqrt_recipm1_alphas_cumprod: (1.0 / a - 1.0).sqrt(),
            posterior_mean_coef1: b * ap.sqrt() / (1.0 - a),
            posterior_mean_coef2: (1.0 - ap) * (1.0 - b).sqrt() / (1.0 - a),
            min_log,
            max_log: b.ln(),
            add_noise: k != 0,
        }
    }

    /// Coefficients of one DDIM step (eta = 0).
    pub fn ddim(&self, k: usize) -> DdimCoeffs {
        let (a, ap) = (self.alphas_cumprod[k], self.alphas_cumprod_prev(k));
        DdimCoeffs {
            sqrt_recip_alphas_cumprod: (1.0 / a).sqrt(),
            sqrt_recipm1_alphas_cumprod: (1.0 / a - 1.0).sqrt(),
            sqrt_alphas_cumprod_prev: ap.sqrt(),
            sqrt_one_minus_alphas_cumprod_prev: (1.0 - ap).sqrt(),
        }
    }

    /// alpha_t, sigma_t and lambda_t = ln(alpha_t / sigma_t) of step k in the VP parametrisation used by DPM-Solver.
    pub fn vp(&self, k: usize) -> (f64, f64, f64) {
        let a = self.alphas_cumprod[k];
        let (alpha, sigma) = (a.sqrt(), (1.0 - a).sqrt());
        (alpha, sigma, alpha.ln() - sigma.ln())
    }
}

/// Per-step scalars of DDPM with learned-range variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdpmCoeffs {
    pub sqrt_recip_alphas_cumprod: f64,
    pub sqrt_recipm1_alphas_cumprod: f64,
    pub posterior_mean_coef1: f64,
    pub posterior_mean_coef2: f64,
    pub min_log: f64,
    pub max_log: f64,
    pub add_noise: bool,
}

/// Per-step scalars of DDIM (eta = 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdimCoeffs {
    pub sqrt_recip_alphas_cumprod: f64,
    pub sqrt_recipm1_alphas_cumprod: f64,
    pub sqrt_alphas_cumprod_prev: f64,
    pub sqrt_one_minus_alphas_cumprod_prev: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respacing_matches_the_release() {
        let t250 = Spacing::Even(250).timesteps().unwrap();
        assert_eq!(t250.len(), 250);
        assert_eq!(&t250[..4], &[0, 4, 8, 12]);
        assert_eq!(&t250[248..], &[995, 999]);
        let t50 = Spacing::Even(50).timesteps().unwrap();
        assert_eq!(&t50[..4], &[0, 20, 41, 61]);
        assert_eq!(&t50[48..], &[979, 999]);
        let d50 = Spacing::Ddim(50).timesteps().unwrap();
        assert_eq!(d50.len(), 50);
        assert_eq!((d50[1], d50[49]), (20, 980));
        assert_eq!(Spacing::Even(1000).timesteps().unwrap(), (0..1000).collect::<Vec<_>>());
        assert!(Spacing::Even(0).timesteps().is_err());
        assert!(Spacing::Even(1001).timesteps().is_err());
        assert_eq!(Spacing::parse("ddim25").unwrap(), Spacing::Ddim(25));
        assert!(Spacing::parse("fast").is_err());
    }

    #[test]
    fn round_is_half_to_even() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.6), 3);
    }

    #[test]
    fn full_schedule_keeps_the_training_betas() {
        let s = Schedule::new(Spacing::Even(1000)).unwrap();
        let b = linear_betas();
        assert_eq!(s.betas.len(), 1000);
        for (k, (got, want)) in s.betas.iter().zip(&b).enumerate() {
            assert!((got - want).abs() < 1e-12, "beta {k}");
        }
        assert!((b[0] - 1e-4).abs() < 1e-18 && (b[999] - 0.02).abs() < 1e-18);
        // Respaced: abar at the used timesteps is the training abar there.
        let r = Schedule::new(Spacing::Even(50)).unwrap();
        let full = Schedule::new(Spacing::Even(1000)).unwrap();
        for (k, &t) in r.timesteps.iter().enumerate() {
            assert!((r.alphas_cumprod[k] - full.alphas_cumprod[t]).abs() < 1e-12);
        }
    }
}
