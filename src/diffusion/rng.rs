//! The sampler's noise: seeded, documented, and bit-identical on every platform (native and wasm), so a seed gives
//! the same image everywhere.
//!
//! Stream: SplitMix64 from the seed gives 64-bit words; two words give two uniforms in (0, 1]
//! (`(w >> 11) + 1) * 2^-53`); Box–Muller turns each pair into two standard normals
//! `r = sqrt(-2 ln u1)`, `z0 = r cos(2 pi u2)`, `z1 = r sin(2 pi u2)`, computed in f64 with the pure-Rust `libm`
//! functions (not the platform's math library) and rounded to f32. Values are drawn in order: the starting latent
//! [N, C, H, W] first, then the noise of each step in the order the steps run.

/// Gaussian noise generator (see the module docs for the exact stream).
pub struct NoiseRng {
    state: u64,
    spare: Option<f32>,
}

impl NoiseRng {
    pub fn new(seed: u64) -> Self {
        NoiseRng { state: seed, spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// One standard normal value.
    pub fn normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let th = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some((r * libm::sin(th)) as f32);
        (r * libm::cos(th)) as f32
    }

    /// `n` standard normal values.
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::NoiseRng;

    #[test]
    fn deterministic_and_standard_normal() {
        let a = NoiseRng::new(42).normals(100_000);
        assert_eq!(a, NoiseRng::new(42).normals(100_000));
        assert_ne!(a[..10], NoiseRng::new(43).normals(10)[..]);
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
        // Pinned values: a change to the stream changes every seeded image; this makes it a deliberate change.
        let first = NoiseRng::new(0).normals(3);
        println!("seed 0: {first:?}");
        assert_eq!(first, PINNED_SEED0);
    }

    const PINNED_SEED0: [f32; 3] = [-0.45275775, 0.20776604, 2.650606];
}
