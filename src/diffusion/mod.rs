//! Sampling: the release's diffusion schedule and respacing, the samplers (DDPM with learned-range variance, DDIM,
//! DPM-Solver++(2M)), classifier-free guidance, and the seeded noise stream.

pub mod rng;
pub mod sampler;
pub mod schedule;

pub use rng::NoiseRng;
pub use sampler::{CfgChannels, SamplerKind};
pub use schedule::{Schedule, Spacing};
