//! `dit decode`: latents into images with the VAE.

use crate::gpu::{open_gpu, GpuArgs};
use crate::output::{check_output_path, write_images};
use dit_wasm::loader;
use dit_wasm::{npy, pipeline, Error, Result};
use std::path::Path;

pub async fn run(vae_dir: &Path, latent: &Path, out: &Path, g: &GpuArgs) -> Result<()> {
    check_output_path(out)?;
    let z = npy::read_f32(latent)?;
    let &[n, c, h, w] = z.shape.as_slice() else {
        return Err(Error::input(format!("{}: latents must be [N, C, h, w], got {:?}", latent.display(), z.shape)));
    };
    let gpu = open_gpu(g).await?;
    let vae = loader::vae(&loader::Origin::new(), &gpu, &vae_dir.to_string_lossy(), None).await?;
    if c != vae.cfg.latent_channels {
        return Err(Error::input(format!(
            "{}: {c} channels, the VAE takes {}",
            latent.display(),
            vae.cfg.latent_channels
        )));
    }
    let images = pipeline::decode(&gpu, &vae, &z.data, n, h, w).await?;
    let s = vae.cfg.upscale();
    write_images(out, &images, n, h * s, w * s, None)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
