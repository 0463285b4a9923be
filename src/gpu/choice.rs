//! The device's kernel choices: which variant of an op family runs on a problem shape, keyed by one typed key per op
//! (one order for a shape). `tune` times the variants and records the fastest here; the op families in `ops` read it
//! when they choose a kernel.

use super::Gpu;
use std::fmt;

/// A problem shape whose kernel variant is chosen by timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TuneKey {
    /// y [m, n] = x [m, k] W^T + b: the workgroup linear kernel's tile config (`ops::WG_TILES`).
    Linear { m: usize, k: usize, n: usize },
    /// Attention over `batch` samples of `tokens` tokens with `heads` heads of `head_dim`: the split
    /// (`ops::ATTENTION_SPLITS`).
    Attention { batch: usize, tokens: usize, heads: usize, head_dim: usize },
}

impl fmt::Display for TuneKey {
    /// The text form kept in the tuning caches: `linear M,N,K` (the order of the first cache files) or
    /// `attention B,T,H,D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TuneKey::Linear { m, k, n } => write!(f, "linear {m},{n},{k}"),
            TuneKey::Attention { batch, tokens, heads, head_dim } => {
                write!(f, "attention {batch},{tokens},{heads},{head_dim}")
            }
        }
    }
}

impl TuneKey {
    /// Reads the [`Display`](fmt::Display) form back; None for anything else.
    pub fn parse(s: &str) -> Option<TuneKey> {
        let (op, dims) = s.split_once(' ')?;
        let v: Vec<usize> = dims.split(',').map(|x| x.trim().parse().ok()).collect::<Option<_>>()?;
        match (op, v.as_slice()) {
            ("linear", &[m, n, k]) => Some(TuneKey::Linear { m, k, n }),
            ("attention", &[batch, tokens, heads, head_dim]) => {
                Some(TuneKey::Attention { batch, tokens, heads, head_dim })
            }
            _ => None,
        }
    }
}

impl Gpu {
    /// The kernel variant recorded for a problem shape on this device (`tune::tune_linear` and
    /// `tune::tune_attention` time the candidates and record the fastest), if one was.
    pub fn choice(&self, key: &TuneKey) -> Option<usize> {
        self.choices.borrow().get(key).copied()
    }

    /// Records the variant to use for a problem shape (see [`Gpu::choice`]).
    pub fn set_choice(&self, key: TuneKey, variant: usize) {
        self.choices.borrow_mut().insert(key, variant);
    }

    /// Every recorded choice, sorted by key.
    pub fn choices(&self) -> Vec<(TuneKey, usize)> {
        self.choices.borrow().iter().map(|(k, v)| (*k, *v)).collect()
    }
}
