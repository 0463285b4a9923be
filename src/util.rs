//! Small platform helpers.

/// Seconds from an arbitrary fixed point, for timing (monotonic natively, `performance.now()` in the browser).
#[cfg(not(target_arch = "wasm32"))]
pub fn now_seconds() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

#[cfg(target_arch = "wasm32")]
pub fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// The unit variant of `T` that serde names `name` (its `rename`s and `alias`es): the one list of an option's names,
/// read alike by the CLI's parsers and the browser API's typed options.
pub fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    use serde::de::{value::StrDeserializer, IntoDeserializer};
    let de: StrDeserializer<'_, serde::de::value::Error> = name.into_deserializer();
    T::deserialize(de).ok()
}

/// Median of a list of timings (0 when empty).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        0.5 * (v[mid - 1] + v[mid])
    }
}

/// A small, fast, seedable generator (SplitMix64) for random test and benchmark weights. Not the sampler's noise RNG.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}
