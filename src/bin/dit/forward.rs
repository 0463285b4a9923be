//! `dit forward`: one DiT forward on .npy inputs.

use crate::gpu::{open_gpu, GpuArgs};
use crate::output::check_writable;
use dit_wasm::loader;
use dit_wasm::{npy, Error, Result};
use std::path::Path;

/// The forward's input files: latents x [N, C, H, W], times t [N], labels y [N], and a flow map's end times r [N].
pub struct Inputs<'a> {
    pub x: &'a Path,
    pub t: &'a Path,
    pub y: &'a Path,
    pub r: Option<&'a Path>,
}

pub async fn run(model: &Path, inputs: Inputs<'_>, out: &Path, g: &GpuArgs) -> Result<()> {
    let Inputs { x, t, y, r } = inputs;
    check_writable(out)?;
    let xa = npy::read_f32(x)?;
    let ta = npy::read_f32(t)?;
    let ya = npy::read_int(y)?;
    let ra = r.map(npy::read_f32).transpose()?;
    let &[n, c, h, w] = xa.shape.as_slice() else {
        return Err(Error::input(format!("{}: x must be [N, C, H, W], got shape {:?}", x.display(), xa.shape)));
    };
    if h != w {
        return Err(Error::input(format!("{}: latent must be square, got {h}x{w}", x.display())));
    }
    let mut vectors = vec![(t, &ta.shape, "timesteps"), (y, &ya.shape, "labels")];
    if let (Some(p), Some(a)) = (r, &ra) {
        vectors.push((p, &a.shape, "end times"));
    }
    for (path, shape, what) in vectors {
        if shape.as_slice() != [n] {
            return Err(Error::input(format!(
                "{}: {what} must have shape [{n}] to match x, got {shape:?}",
                path.display()
            )));
        }
    }
    let labels: Vec<u32> = ya
        .data
        .iter()
        .map(|&v| u32::try_from(v).map_err(|_| Error::input(format!("{}: class label {v} is negative", y.display()))))
        .collect::<Result<_>>()?;
    let gpu = open_gpu(g).await?;
    let (_, dit) = loader::dit(&loader::Origin::new(), &gpu, &model.to_string_lossy(), None).await?;
    if c != dit.cfg.in_channels {
        return Err(Error::input(format!(
            "{}: x has {c} channels, the model takes {}",
            x.display(),
            dit.cfg.in_channels
        )));
    }
    if h % dit.cfg.patch_size != 0 {
        return Err(Error::input(format!(
            "{}: latent side {h} is not a multiple of the patch size {}",
            x.display(),
            dit.cfg.patch_size
        )));
    }
    let plan = dit.plan(&gpu, n, h)?;
    plan.set_inputs(&gpu, &xa.data, &ta.data, &labels)?;
    match (&ra, dit.cfg.arch.is_flow_map()) {
        (Some(r), true) => plan.set_end_times(&gpu, &ta.data, &r.data)?,
        (None, false) => {}
        (None, true) => {
            return Err(Error::input(format!(
                "a {} model jumps from t to r: give the end times with --r FILE.npy",
                dit.cfg.arch.name()
            )))
        }
        (Some(_), false) => {
            return Err(Error::input(format!("--r is for flow maps; this is a {} model", dit.cfg.arch.name())))
        }
    }
    plan.run(&gpu);
    let y_out = gpu.read_f32(&plan.out).await?;
    npy::write_f32(out, &plan.out.shape, &y_out)?;
    eprintln!("wrote {} {:?}", out.display(), plan.out.shape);
    Ok(())
}
