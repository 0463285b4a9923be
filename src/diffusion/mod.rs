//! Sampling: the release's diffusion schedule and respacing, the samplers (DDPM with learned-range variance, DDIM,
//! DPM-Solver++(2M); for flows Euler, Heun, Euler-Maruyama and the adaptive dopri5), classifier-free guidance, and
//! the seeded noise stream.

pub mod dopri5;
pub mod rng;
pub mod sampler;
pub mod schedule;

pub use rng::NoiseRng;
pub use sampler::{CfgChannels, SamplerKind};
pub use schedule::{Schedule, Spacing};
