//! The DiT architecture as data: its config (the release's `DiT(...)` arguments) with the paper's presets named as
//! upstream names them (`DiT-XL/2`, ...), the tensor manifest of a checkpoint, and the fixed position embedding.

use super::{record, TensorSource, TensorSpec, WeightBias};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Width of the sinusoidal timestep features (the release's `frequency_embedding_size`).
pub const FREQ_DIM: usize = 256;

/// The largest attention head dim the kernels run (their register arrays hold `4 * MAX_HD4` in the shader).
pub const MAX_HEAD_DIM: usize = 128;

/// Index of the null ("unconditional") class in the label table: the row after the last real class. ImageNet DiT
/// checkpoints have 1000 classes, so the null class is 1000 (the release's `LabelEmbedder` with `use_cfg_embedding`).
pub fn null_class(num_classes: usize) -> usize {
    num_classes
}

/// The DiT architecture (the release's `DiT(...)` arguments). Stored as `config` in a model index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DitConfig {
    /// Number of DiT blocks.
    pub depth: usize,
    /// Token width D.
    pub hidden_size: usize,
    /// Attention heads; head dim = D / heads.
    pub num_heads: usize,
    /// Patch side p (2, 4 or 8 in the paper).
    pub patch_size: usize,
    /// Latent channels (4 for the SD VAE).
    pub in_channels: usize,
    /// Output channels = 2 * in_channels when the model also predicts the variance (learned range).
    pub learn_sigma: bool,
    /// Real classes; the label table has one more row, the null class.
    pub num_classes: usize,
    /// Latent side the model was trained at (32 for 256 px, 64 for 512 px); other sizes divisible by p also run.
    pub input_size: usize,
    /// MLP hidden width = mlp_ratio * D.
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// What the network was trained as: a DiT (diffusion, integer timesteps 0..999), a SiT (a flow, float time in
    /// [0, 1]) or a flow map (MeanFlow / α-Flow, Decoupled MeanFlow). The weights cannot tell; absent in an index means
    /// DiT.
    #[serde(default, skip_serializing_if = "Family::is_dit")]
    pub arch: Family,
    /// Decoupled MeanFlow's split: blocks before it are conditioned on the start time t, the rest and the final layer
    /// on the end time r (upstream's constructor argument `dmf_depth`, 20 for DMF-XL/2; the checkpoint does not hold
    /// it; past the last block, only the final layer sees r). Only for `arch: dmf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmf_depth: Option<usize>,
    /// RMSNorm (eps 1e-6, a learned scale) over each head's q and k before attention (DMF's 512 px model:
    /// `blocks.N.attn.{q_norm,k_norm}.scale`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub qk_norm: bool,
    /// Per-element statistics of the VAE's latents that the model's latent space is standardised by (MeanFlow /
    /// α-Flow: `autoencoder_mean`, `autoencoder_var`); absent: the VAE's scaling factor (0.18215 for the SD VAE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_stats: Option<LatentStats>,
}

/// A flow-map model's latent space: the VAE's latent is `x * sqrt(var + 1e-16) + mean`, per element (the α-Flow
/// release's decode), `mean` and `var` of shape [C, H, W] flattened (the checkpoint's `[1, C, H, W]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// The variance floor of the α-Flow release's decode, `sqrt(var + 1e-16)`.
pub const LATENT_VAR_EPS: f64 = 1e-16;

impl LatentStats {
    /// Model-space latents [N, C, H, W] (N whole samples of `mean.len()` values) to the VAE's raw latent space.
    pub fn to_vae(&self, latents: &[f32]) -> Vec<f32> {
        let per = self.mean.len().max(1);
        latents
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let (m, v) = (self.mean[i % per] as f64, self.var[i % per] as f64);
                (x as f64 * (v + LATENT_VAR_EPS).sqrt() + m) as f32
            })
            .collect()
    }
}

/// The family of a DiT network (`arch` in configs and locations): the same blocks and names, trained as a diffusion
/// (DiT), a flow (SiT) or a flow map (MeanFlow / α-Flow, Decoupled MeanFlow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// DiT (Peebles & Xie): eps prediction; the time input is the training timestep 0..999.
    #[default]
    Dit,
    /// SiT (Ma et al.): velocity along x_t = t x + (1 - t) eps; the time input is t in [0, 1] (0 = noise), taken
    /// straight into the timestep embedding (no x1000).
    Sit,
    /// MeanFlow / α-Flow (snap-research/alphaflow): the average velocity u(x_t; t, r) along x_t = (1 - t) x + t eps
    /// (t = 1 noise); two timestep embedders, c = E1(t) + E2(t - r) + Y(y) for every block and the final layer.
    Meanflow,
    /// Decoupled MeanFlow (kyungmnlee/dmf): the same u with one embedder; blocks before `dmf_depth` get E(t) + Y(y),
    /// the rest and the final layer E(r) + Y(y).
    Dmf,
}

impl Family {
    pub fn parse(s: &str) -> Result<Family> {
        crate::util::from_name(s)
            .ok_or_else(|| Error::input(format!("unknown model kind `{s}`: use dit, sit, meanflow or dmf")))
    }

    pub fn is_dit(&self) -> bool {
        *self == Family::Dit
    }

    /// Whether the model is a flow (sampled by the flow samplers) rather than a diffusion.
    pub fn is_flow(self) -> bool {
        self == Family::Sit
    }

    /// Whether the model is a flow map (sampled by the flow-map sampler: one call jumps from t to r).
    pub fn is_flow_map(self) -> bool {
        matches!(self, Family::Meanflow | Family::Dmf)
    }

    /// What the second time input of a flow map's network is, for a jump from t to r: the gap t - r (MeanFlow's
    /// second embedder) or r itself (DMF's decoder blocks).
    pub fn second_time(self, t: f64, r: f64) -> f64 {
        match self {
            Family::Meanflow => t - r,
            _ => r,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Dit => "dit",
            Family::Sit => "sit",
            Family::Meanflow => "meanflow",
            Family::Dmf => "dmf",
        }
    }
}

fn default_mlp_ratio() -> f64 {
    4.0
}

/// (name, depth, width, heads) of the paper's model sizes.
pub const DIT_SIZES: [(&str, usize, usize, usize); 4] =
    [("S", 12, 384, 6), ("B", 12, 768, 12), ("L", 24, 1024, 16), ("XL", 28, 1152, 16)];

impl DitConfig {
    /// A paper preset: `name` is `S/2`, `DiT-XL/2`, ...; `resolution` is the image side in pixels (256 or 512).
    pub fn preset(name: &str, resolution: usize) -> Result<DitConfig> {
        let bad =
            || Error::input(format!("unknown preset `{name}`: use S, B, L or XL with patch 2, 4 or 8, e.g. XL/2"));
        let short = name.trim_start_matches("DiT-");
        let (size, patch) = short.split_once('/').ok_or_else(bad)?;
        let patch: usize = patch.parse().map_err(|_| bad())?;
        if ![2, 4, 8].contains(&patch) {
            return Err(bad());
        }
        let &(_, depth, hidden_size, num_heads) = DIT_SIZES.iter().find(|s| s.0 == size).ok_or_else(bad)?;
        if !resolution.is_multiple_of(8) || !(resolution / 8).is_multiple_of(patch) {
            return Err(Error::input(format!(
                "resolution {resolution} px does not give a latent divisible by patch {patch}"
            )));
        }
        Ok(DitConfig {
            depth,
            hidden_size,
            num_heads,
            patch_size: patch,
            in_channels: 4,
            learn_sigma: true,
            num_classes: 1000,
            input_size: resolution / 8,
            mlp_ratio: 4.0,
            arch: Family::Dit,
            dmf_depth: None,
            qk_norm: false,
            latent_stats: None,
        })
    }

    /// The same network trained as `family`, as its release configures it: a DiT or SiT with learned sigma, a flow map
    /// with 4 output channels (DMF split at 5/7 of the depth: 20 of XL/2's 28 blocks). Random-weight benchmarks use it.
    pub fn trained_as(self, family: Family) -> DitConfig {
        let flow_map = family.is_flow_map();
        DitConfig {
            arch: family,
            learn_sigma: !flow_map,
            dmf_depth: (family == Family::Dmf).then_some(self.depth * 5 / 7),
            latent_stats: None,
            ..self
        }
    }

    /// Heads of the paper preset with this depth and width, if there is one.
    pub fn preset_heads(depth: usize, hidden_size: usize) -> Option<usize> {
        DIT_SIZES.iter().find(|s| s.1 == depth && s.2 == hidden_size).map(|s| s.3)
    }

    /// The preset's name (`DiT-XL/2`) when this config is one, whatever the resolution.
    pub fn preset_name(&self) -> Option<String> {
        let s = DIT_SIZES.iter().find(|s| s.1 == self.depth && s.2 == self.hidden_size && s.3 == self.num_heads)?;
        Some(format!("DiT-{}/{}", s.0, self.patch_size))
    }

    pub fn out_channels(&self) -> usize {
        if self.learn_sigma {
            2 * self.in_channels
        } else {
            self.in_channels
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads.max(1)
    }

    pub fn mlp_hidden(&self) -> usize {
        (self.hidden_size as f64 * self.mlp_ratio) as usize
    }

    /// Tokens for a latent of side `latent`.
    pub fn tokens(&self, latent: usize) -> usize {
        (latent / self.patch_size).pow(2)
    }

    /// Multiply-accumulates of one forward of one sample at latent side `latent` (the paper's "Gflops" are these).
    pub fn macs(&self, latent: usize) -> f64 {
        let (d, t) = (self.hidden_size as f64, self.tokens(latent) as f64);
        let pp = (self.patch_size * self.patch_size) as f64;
        let f = self.mlp_hidden() as f64;
        // Per block: qkv and projection (4 d^2), the MLP (2 d f), attention's two products (2 t^2 d) per token, and
        // the adaLN modulation (6 d^2) once per sample.
        let block = t * (4.0 * d * d + 2.0 * d * f) + 2.0 * t * t * d + 6.0 * d * d;
        // Patch embedding, then the timestep MLP (FREQ_DIM -> d -> d).
        let embed = t * d * pp * self.in_channels as f64 + FREQ_DIM as f64 * d + d * d;
        // The final layer's modulation (2 d^2) and its linear per token.
        let last = 2.0 * d * d + t * d * pp * self.out_channels() as f64;
        self.depth as f64 * block + embed + last
    }

    /// Parameters of the trained model (the fixed position embedding is not a parameter).
    pub fn parameters(&self) -> usize {
        let (d, f) = (self.hidden_size, self.mlp_hidden());
        let pp = self.patch_size * self.patch_size;
        let block = (d * 6 * d + 6 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d);
        let t_embedders = if self.arch == Family::Meanflow { 2 } else { 1 };
        let embed = (d * self.in_channels * pp + d)
            + t_embedders * ((FREQ_DIM * d + d) + (d * d + d))
            + (self.num_classes + 1) * d;
        let last = (d * 2 * d + 2 * d) + (d * pp * self.out_channels() + pp * self.out_channels());
        let qk = if self.qk_norm { 2 * self.head_dim() } else { 0 };
        self.depth * (block + qk) + embed + last
    }

    /// Checks the config is one the kernels run.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(Error::Config(m));
        if self.depth == 0
            || self.hidden_size == 0
            || self.num_heads == 0
            || self.patch_size == 0
            || self.in_channels == 0
        {
            return err("depth, hidden_size, num_heads, patch_size and in_channels must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return err(format!("hidden_size {} is not divisible by num_heads {}", self.hidden_size, self.num_heads));
        }
        let hd = self.head_dim();
        if !hd.is_multiple_of(4) || hd > MAX_HEAD_DIM {
            return err(format!("head dim {hd} must be a multiple of 4 and at most {}", MAX_HEAD_DIM));
        }
        if !self.hidden_size.is_multiple_of(4) || !self.mlp_hidden().is_multiple_of(4) {
            return err("hidden_size and the MLP width must be multiples of 4".into());
        }
        let pp = self.patch_size * self.patch_size;
        if !(self.in_channels * pp).is_multiple_of(4) || !(self.out_channels() * pp).is_multiple_of(4) {
            return err("in_channels * patch_size^2 must be a multiple of 4".into());
        }
        if !self.input_size.is_multiple_of(self.patch_size) {
            return err(format!("input_size {} is not divisible by patch_size {}", self.input_size, self.patch_size));
        }
        match (self.arch, self.dmf_depth) {
            (Family::Dmf, None) => {
                return err("a DMF model needs `dmf_depth`, the block where its decoder starts (20 for DMF-XL/2): \
                            convert with --dmf-depth N"
                    .into())
            }
            (Family::Dmf, Some(_)) | (_, None) => {}
            (_, Some(_)) => return err(format!("dmf_depth is only for a DMF model, not {}", self.arch.name())),
        }
        if let Some(s) = &self.latent_stats {
            let n = self.in_channels * self.input_size * self.input_size;
            if s.mean.len() != n || s.var.len() != n {
                return err(format!(
                    "latent statistics hold {} means and {} variances; the model's latent [{}, {}, {}] has {n} values",
                    s.mean.len(),
                    s.var.len(),
                    self.in_channels,
                    self.input_size,
                    self.input_size
                ));
            }
            if s.mean.iter().chain(&s.var).any(|v| !v.is_finite()) || s.var.iter().any(|&v| v < 0.0) {
                return err("latent statistics must be finite, with variances of at least 0".into());
            }
        }
        Ok(())
    }

    /// The first block conditioned on the end time r (a DMF's decoder: blocks `dmf_depth..depth`, as upstream slices
    /// `blocks[dmf_depth:]`, so a split past the last block leaves only the final layer on r); `depth` for the
    /// other families.
    pub fn decoder_start(&self) -> usize {
        match self.arch {
            Family::Dmf => self.dmf_depth.unwrap_or(0).min(self.depth),
            _ => self.depth,
        }
    }
}

/// One adaLN-Zero block's layers, release names under `blocks.{i}.`: `adaLN_modulation.1` [6D, D] (the six
/// modulation chunks), `attn.qkv` [3D, D], `attn.proj` [D, D], `mlp.fc1` [F, D], `mlp.fc2` [D, F].
#[derive(Debug)]
pub struct DitBlockTensors<T> {
    pub ada: WeightBias<T>,
    pub qkv: WeightBias<T>,
    pub proj: WeightBias<T>,
    pub fc1: WeightBias<T>,
    pub fc2: WeightBias<T>,
    /// `attn.q_norm.scale` and `attn.k_norm.scale` [head_dim] (a DiT with `qk_norm`).
    pub qk_norm: Option<(T, T)>,
}

impl<T> DitBlockTensors<T> {
    /// Takes block `i`'s tensors from `src`.
    fn take<S: TensorSource<Tensor = T>>(cfg: &DitConfig, src: &mut S, i: usize) -> Result<DitBlockTensors<T>> {
        let (d, f) = (cfg.hidden_size, cfg.mlp_hidden());
        let mut wb = |name: &str, shape: &[usize]| WeightBias::take(src, &format!("blocks.{i}.{name}"), shape);
        let (ada, qkv, proj) =
            (wb("adaLN_modulation.1", &[6 * d, d])?, wb("attn.qkv", &[3 * d, d])?, wb("attn.proj", &[d, d])?);
        let (fc1, fc2) = (wb("mlp.fc1", &[f, d])?, wb("mlp.fc2", &[d, f])?);
        let qk_norm = match cfg.qk_norm {
            true => {
                let hd = [cfg.head_dim()];
                let q = src.take(&format!("blocks.{i}.attn.q_norm.scale"), &hd)?;
                Some((q, src.take(&format!("blocks.{i}.attn.k_norm.scale"), &hd)?))
            }
            false => None,
        };
        Ok(DitBlockTensors { ada, qkv, proj, fc1, fc2, qk_norm })
    }
}

/// Every tensor a DiT loads, with the release's names and shapes (the fixed `pos_embed` is not stored): the model
/// graph takes them through [`DitTensors::take`], and [`dit_tensors`] is the same walk recorded.
#[derive(Debug)]
pub struct DitTensors<T> {
    /// `t_embedder.mlp.0` [D, 256] and `t_embedder.mlp.2` [D, D] (MeanFlow: `noise_labels_embedder.mlp.*`, of t).
    pub t_fc1: WeightBias<T>,
    pub t_fc2: WeightBias<T>,
    /// MeanFlow's second embedder, of the gap t - r: `noise_labels_next_embedder.mlp.0` and `.2`.
    pub t2: Option<(WeightBias<T>, WeightBias<T>)>,
    pub blocks: Vec<DitBlockTensors<T>>,
    /// `final_layer.adaLN_modulation.1` [2D, D] and `final_layer.linear` [p*p*C_out, D].
    pub final_ada: WeightBias<T>,
    pub final_linear: WeightBias<T>,
    /// `x_embedder.proj`: the patch-embedding conv [D, C, p, p].
    pub x_embed: WeightBias<T>,
    /// `y_embedder.embedding_table.weight` [classes + 1, D] (the last row is the null class).
    pub y_table: T,
}

impl<T> DitTensors<T> {
    /// Takes every tensor of a DiT of `cfg` from `src`, in the manifest's order.
    pub fn take<S: TensorSource<Tensor = T>>(cfg: &DitConfig, src: &mut S) -> Result<DitTensors<T>> {
        let (d, c, p) = (cfg.hidden_size, cfg.in_channels, cfg.patch_size);
        let mut embedder = |name: &str| -> Result<(WeightBias<T>, WeightBias<T>)> {
            let fc1 = WeightBias::take(src, &format!("{name}.mlp.0"), &[d, FREQ_DIM])?;
            Ok((fc1, WeightBias::take(src, &format!("{name}.mlp.2"), &[d, d])?))
        };
        let ((t_fc1, t_fc2), t2) = match cfg.arch {
            Family::Meanflow => (embedder("noise_labels_embedder")?, Some(embedder("noise_labels_next_embedder")?)),
            _ => (embedder("t_embedder")?, None),
        };
        let blocks = (0..cfg.depth).map(|i| DitBlockTensors::take(cfg, src, i)).collect::<Result<Vec<_>>>()?;
        let final_ada = WeightBias::take(src, "final_layer.adaLN_modulation.1", &[2 * d, d])?;
        let final_linear = WeightBias::take(src, "final_layer.linear", &[p * p * cfg.out_channels(), d])?;
        let x_embed = WeightBias::take(src, "x_embedder.proj", &[d, c, p, p])?;
        let y_table = src.take("y_embedder.embedding_table.weight", &[cfg.num_classes + 1, d])?;
        Ok(DitTensors { t_fc1, t_fc2, t2, blocks, final_ada, final_linear, x_embed, y_table })
    }
}

/// Every tensor of a DiT model directory, with official names and shapes: [`DitTensors::take`] recorded.
pub fn dit_tensors(cfg: &DitConfig) -> Vec<TensorSpec> {
    record(|r| DitTensors::take(cfg, r))
}

/// The fixed 2D sin-cos position embedding [G*G, D], computed in f64 as the release does (numpy float64) and used as
/// f32. Token (r, c) gets `[sin(c w), cos(c w), sin(r w), cos(r w)]`, w_k = 10000^(-k / (D/4)): column first.
pub fn pos_embed_2d(d: usize, grid: usize) -> Vec<f32> {
    let q = d / 4;
    let mut out = Vec::with_capacity(grid * grid * d);
    for r in 0..grid {
        for c in 0..grid {
            for pos in [c as f64, r as f64] {
                let args: Vec<f64> = (0..q).map(|k| pos * 10000f64.powf(-(k as f64) / q as f64)).collect();
                out.extend(args.iter().map(|a| a.sin() as f32));
                out.extend(args.iter().map(|a| a.cos() as f32));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_paper() {
        // Parameter counts and GMACs from the paper (Table 4 / dit-spec.md).
        let xl = DitConfig::preset("XL/2", 256).unwrap();
        assert_eq!(xl.parameters(), 674_834_720); // trained parameters, pos_embed excluded
        for (name, gmacs) in
            [("S/2", 6.06), ("B/2", 23.01), ("L/2", 80.70), ("XL/2", 118.62), ("XL/4", 29.04), ("S/8", 0.36)]
        {
            let c = DitConfig::preset(name, 256).unwrap();
            let g = c.macs(c.input_size) / 1e9;
            assert!((g - gmacs).abs() / gmacs < 0.01, "{name}: {g} GMACs vs {gmacs}");
        }
        let xl512 = DitConfig::preset("DiT-XL/2", 512).unwrap();
        assert!((xl512.macs(64) / 1e9 - 524.5).abs() < 5.0);
        assert_eq!(xl512.preset_name().unwrap(), "DiT-XL/2");
        assert!(DitConfig::preset("XXL/2", 256).is_err());
        assert!(DitConfig::preset("XL/3", 256).is_err());
    }
}
