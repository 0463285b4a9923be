//! Output files: the checks made before any slow work, and images written as .npy or as a PNG grid.

use dit_wasm::{npy, Error, Result};
use std::path::Path;

/// Writes images [N, 3, H, W] as a .npy or as a PNG grid.
pub fn write_images(out: &Path, images: &[f32], n: usize, h: usize, w: usize, cols: Option<usize>) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy::write_f32(out, &[n, 3, h, w], images),
        Some("png") => {
            let rgb = dit_wasm::pipeline::to_rgb8(images, n, h, w);
            let cols = cols.unwrap_or((n as f64).sqrt().ceil() as usize).clamp(1, n);
            let rows = n.div_ceil(cols);
            let pad = 2;
            let (gw, gh) = (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad);
            let mut grid = vec![255u8; gw * gh * 3];
            for (i, img) in rgb.iter().enumerate() {
                let (ox, oy) = (pad + (i % cols) * (w + pad), pad + (i / cols) * (h + pad));
                for y in 0..h {
                    let dst = ((oy + y) * gw + ox) * 3;
                    grid[dst..dst + w * 3].copy_from_slice(&img[y * w * 3..(y + 1) * w * 3]);
                }
            }
            let f = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
            let mut enc = png::Encoder::new(std::io::BufWriter::new(f), gw as u32, gh as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let io = |e: png::EncodingError| Error::format(out.display().to_string(), e.to_string());
            enc.write_header().map_err(io)?.write_image_data(&grid).map_err(io)
        }
        _ => Err(Error::input(format!("{}: the output must end in .png or .npy", out.display()))),
    }
}

/// Checks an image or latent output before any slow work: a .png or .npy name that can be written.
pub fn check_output_path(out: &Path) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("png") | Some("npy") => check_writable(out),
        _ => Err(Error::input(format!("{}: the output must end in .png or .npy", out.display()))),
    }
}

/// Checks that a file can be written at `out` (an existing file opens for writing; else its folder exists and takes
/// a new file; `out` is no folder), so that a mistyped path fails at once instead of after the sampling. Nothing is
/// changed: an existing `out` is opened without truncating, and the probe file in its folder is removed.
pub fn check_writable(out: &Path) -> Result<()> {
    if out.is_dir() {
        return Err(Error::input(format!("{}: is a folder; give a file name", out.display())));
    }
    if out.exists() {
        return match std::fs::OpenOptions::new().write(true).open(out) {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::input(format!("{}: cannot be overwritten: {e}", out.display()))),
        };
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "{}: the folder {} does not exist; create it or choose another output path",
            out.display(),
            dir.display()
        )));
    }
    // Permission bits do not tell (root, ACLs, read-only mounts): try it.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let probe = dir.join(format!(".dit-write-probe-{}-{nanos}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::input(format!("{}: cannot write in {}: {e}", out.display(), dir.display()))),
    }
}
