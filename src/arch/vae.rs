//! The SD VAE decoder's architecture as data: its config (the `AutoencoderKL` fields the decoder depends on) and the
//! tensor manifest of a `vae-decoder` directory, with diffusers' names and shapes.

use super::TensorSpec;
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

/// Every tensor of a `vae-decoder` directory with diffusers names and shapes.
pub fn vae_tensors(cfg: &VaeConfig) -> Vec<TensorSpec> {
    let mut v = vec![];
    let mut add = |name: String, shape: Vec<usize>| v.push(TensorSpec { name, shape });
    let conv = |add: &mut dyn FnMut(String, Vec<usize>), name: &str, cin: usize, cout: usize, k: usize| {
        add(format!("{name}.weight"), vec![cout, cin, k, k]);
        add(format!("{name}.bias"), vec![cout]);
    };
    let norm = |add: &mut dyn FnMut(String, Vec<usize>), name: &str, c: usize| {
        add(format!("{name}.weight"), vec![c]);
        add(format!("{name}.bias"), vec![c]);
    };
    let resnet = |add: &mut dyn FnMut(String, Vec<usize>), name: &str, cin: usize, cout: usize| {
        norm(add, &format!("{name}.norm1"), cin);
        conv(add, &format!("{name}.conv1"), cin, cout, 3);
        norm(add, &format!("{name}.norm2"), cout);
        conv(add, &format!("{name}.conv2"), cout, cout, 3);
        if cin != cout {
            conv(add, &format!("{name}.conv_shortcut"), cin, cout, 1);
        }
    };
    let lat = cfg.latent_channels;
    let top = *cfg.block_out_channels.last().expect("validated");
    conv(&mut add, "post_quant_conv", lat, lat, 1);
    conv(&mut add, "decoder.conv_in", lat, top, 3);
    resnet(&mut add, "decoder.mid_block.resnets.0", top, top);
    if cfg.mid_block_add_attention {
        let a = "decoder.mid_block.attentions.0";
        norm(&mut add, &format!("{a}.group_norm"), top);
        for p in ["to_q", "to_k", "to_v", "to_out.0"] {
            add(format!("{a}.{p}.weight"), vec![top, top]);
            add(format!("{a}.{p}.bias"), vec![top]);
        }
    }
    resnet(&mut add, "decoder.mid_block.resnets.1", top, top);
    let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
    let mut prev = rev[0];
    for (i, &out) in rev.iter().enumerate() {
        for j in 0..=cfg.layers_per_block {
            resnet(&mut add, &format!("decoder.up_blocks.{i}.resnets.{j}"), if j == 0 { prev } else { out }, out);
        }
        if i + 1 < rev.len() {
            conv(&mut add, &format!("decoder.up_blocks.{i}.upsamplers.0.conv"), out, out, 3);
        }
        prev = out;
    }
    norm(&mut add, "decoder.conv_norm_out", cfg.block_out_channels[0]);
    conv(&mut add, "decoder.conv_out", cfg.block_out_channels[0], cfg.out_channels, 3);
    v
}
