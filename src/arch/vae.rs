//! The SD VAE decoder's architecture as data: its config (the `AutoencoderKL` fields the decoder depends on) and the
//! tensor manifest of a `vae-decoder` directory, with diffusers' names and shapes.

use super::{record, TensorSource, TensorSpec, WeightBias};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The latent scale of SD's VAE (`scaling_factor` 0.18215): the sampler's latent is `z * 0.18215`.
pub const SD_SCALING_FACTOR: f64 = 0.18215;

/// The decoder's architecture (the `AutoencoderKL` config fields it depends on). Stored as `config` in the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    pub latent_channels: usize,
    pub out_channels: usize,
    /// Encoder order, as diffusers writes it: the decoder walks it reversed ([128, 256, 512, 512] for SD).
    pub block_out_channels: Vec<usize>,
    /// The decoder's up blocks have `layers_per_block + 1` ResNets.
    pub layers_per_block: usize,
    pub norm_num_groups: usize,
    pub scaling_factor: f64,
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
}

fn yes() -> bool {
    true
}

impl VaeConfig {
    /// sd-vae-ft-mse / sd-vae-ft-ema (and the VAE of SD 1.x).
    pub fn sd() -> VaeConfig {
        VaeConfig {
            latent_channels: 4,
            out_channels: 3,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_num_groups: 32,
            scaling_factor: SD_SCALING_FACTOR,
            mid_block_add_attention: true,
        }
    }

    /// Output pixels per latent pixel along each side.
    pub fn upscale(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }

    pub fn validate(&self) -> Result<()> {
        let g = self.norm_num_groups;
        if self.block_out_channels.is_empty() || g == 0 {
            return Err(Error::Config("VAE needs at least one block and one norm group".into()));
        }
        for &c in &self.block_out_channels {
            if c % g != 0 || !(c / g).is_multiple_of(4) {
                return Err(Error::Config(format!(
                    "VAE channels {c} in {g} groups: each group must hold a multiple of 4"
                )));
            }
        }
        if !self.latent_channels.is_multiple_of(4) {
            return Err(Error::Config(format!("VAE latent channels {} must be a multiple of 4", self.latent_channels)));
        }
        Ok(())
    }

    /// Decoder parameters (post_quant_conv included).
    pub fn parameters(&self) -> usize {
        vae_tensors(self).iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }
}

/// One ResNet block's tensors (`norm1`, `conv1`, `norm2`, `conv2`, and `conv_shortcut` [cout, cin, 1, 1] when the
/// channel count changes).
#[derive(Debug)]
pub struct ResnetTensors<T> {
    pub cin: usize,
    pub cout: usize,
    pub norm1: WeightBias<T>,
    pub conv1: WeightBias<T>,
    pub norm2: WeightBias<T>,
    pub conv2: WeightBias<T>,
    pub shortcut: Option<WeightBias<T>>,
}

impl<T> ResnetTensors<T> {
    fn take<S: TensorSource<Tensor = T>>(src: &mut S, name: &str, cin: usize, cout: usize) -> Result<Self> {
        Ok(ResnetTensors {
            cin,
            cout,
            norm1: WeightBias::take(src, &format!("{name}.norm1"), &[cin])?,
            conv1: WeightBias::take(src, &format!("{name}.conv1"), &[cout, cin, 3, 3])?,
            norm2: WeightBias::take(src, &format!("{name}.norm2"), &[cout])?,
            conv2: WeightBias::take(src, &format!("{name}.conv2"), &[cout, cout, 3, 3])?,
            shortcut: match cin != cout {
                true => Some(WeightBias::take(src, &format!("{name}.conv_shortcut"), &[cout, cin, 1, 1])?),
                false => None,
            },
        })
    }
}

/// The mid block's single-head attention: `group_norm`, then the projections [C, C].
#[derive(Debug)]
pub struct VaeAttnTensors<T> {
    pub norm: WeightBias<T>,
    /// `to_q`, `to_k`, `to_v` and `to_out.0`, in that order.
    pub proj: [WeightBias<T>; 4],
}

/// One up block: `layers_per_block + 1` ResNets, then a 3x3 upsampler conv except on the last level.
#[derive(Debug)]
pub struct UpBlockTensors<T> {
    pub resnets: Vec<ResnetTensors<T>>,
    pub upsample: Option<WeightBias<T>>,
}

/// Every tensor the decoder loads, with diffusers' names and shapes: the graph takes them through
/// [`VaeTensors::take`], and [`vae_tensors`] is the same walk recorded.
#[derive(Debug)]
pub struct VaeTensors<T> {
    /// `post_quant_conv` [lat, lat, 1, 1].
    pub post_quant: WeightBias<T>,
    /// `decoder.conv_in` [top, lat, 3, 3].
    pub conv_in: WeightBias<T>,
    /// `decoder.mid_block.resnets.{0,1}` with the attention between them.
    pub mid: [ResnetTensors<T>; 2],
    pub attn: Option<VaeAttnTensors<T>>,
    /// `decoder.up_blocks.{i}`, from the widest level (the encoder order reversed).
    pub up: Vec<UpBlockTensors<T>>,
    /// `decoder.conv_norm_out` and `decoder.conv_out` [out_channels, c0, 3, 3].
    pub norm_out: WeightBias<T>,
    pub conv_out: WeightBias<T>,
}

impl<T> VaeTensors<T> {
    /// Takes every tensor of a decoder of `cfg` (validated) from `src`, in the manifest's order.
    pub fn take<S: TensorSource<Tensor = T>>(cfg: &VaeConfig, src: &mut S) -> Result<VaeTensors<T>> {
        let lat = cfg.latent_channels;
        let top = *cfg.block_out_channels.last().expect("validated");
        let post_quant = WeightBias::take(src, "post_quant_conv", &[lat, lat, 1, 1])?;
        let conv_in = WeightBias::take(src, "decoder.conv_in", &[top, lat, 3, 3])?;
        let mid0 = ResnetTensors::take(src, "decoder.mid_block.resnets.0", top, top)?;
        let attn = match cfg.mid_block_add_attention {
            true => {
                let a = "decoder.mid_block.attentions.0";
                let norm = WeightBias::take(src, &format!("{a}.group_norm"), &[top])?;
                let [q, k, v, out] = ["to_q", "to_k", "to_v", "to_out.0"];
                let mut proj = |name: &str| WeightBias::take(src, &format!("{a}.{name}"), &[top, top]);
                Some(VaeAttnTensors { norm, proj: [proj(q)?, proj(k)?, proj(v)?, proj(out)?] })
            }
            false => None,
        };
        let mid1 = ResnetTensors::take(src, "decoder.mid_block.resnets.1", top, top)?;
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let mut up = vec![];
        let mut prev = rev[0];
        for (i, &out) in rev.iter().enumerate() {
            let b = format!("decoder.up_blocks.{i}");
            let resnets = (0..=cfg.layers_per_block)
                .map(|j| ResnetTensors::take(src, &format!("{b}.resnets.{j}"), if j == 0 { prev } else { out }, out))
                .collect::<Result<Vec<_>>>()?;
            let upsample = match i + 1 < rev.len() {
                true => Some(WeightBias::take(src, &format!("{b}.upsamplers.0.conv"), &[out, out, 3, 3])?),
                false => None,
            };
            up.push(UpBlockTensors { resnets, upsample });
            prev = out;
        }
        let c0 = cfg.block_out_channels[0];
        let norm_out = WeightBias::take(src, "decoder.conv_norm_out", &[c0])?;
        let conv_out = WeightBias::take(src, "decoder.conv_out", &[cfg.out_channels, c0, 3, 3])?;
        Ok(VaeTensors { post_quant, conv_in, mid: [mid0, mid1], attn, up, norm_out, conv_out })
    }
}

/// Every tensor of a `vae-decoder` directory with diffusers names and shapes: [`VaeTensors::take`] recorded.
pub fn vae_tensors(cfg: &VaeConfig) -> Vec<TensorSpec> {
    record(|r| VaeTensors::take(cfg, r))
}
