//! Whether a DiT fits a device's limits, from its config alone: the loader asks before any weights are fetched, so
//! that a model that cannot run on this device is refused with the tensor and the limit, not after a download.

use super::Dit;
use crate::arch::{dit_tensors, DitConfig, FREQ_DIM};
use crate::error::{Error, Result};
use crate::gpu::AdapterReport;

impl Dit {
    /// Checks that a forward of `batch` samples of side `latent` ([`Dit::plan`]) and the weights fit this device's
    /// storage bindings: every activation the plan allocates and every weight in one binding each. The texture path's
    /// staging and weight textures are not bindings of this limit (a layer whose textures do not fit keeps its storage
    /// buffer), nor are split-K scratch buffers (a tile whose scratch does not fit is not used).
    pub fn check_fit(report: &AdapterReport, cfg: &DitConfig, batch: usize, latent: usize) -> Result<()> {
        let (d, p) = (cfg.hidden_size as u64, cfg.patch_size as u64);
        let (n, c, lat) = (batch as u64, cfg.in_channels as u64, latent as u64);
        let t = (lat / p.max(1)).pow(2);
        let m = n * t;
        let mlp = cfg.mlp_hidden() as u64;
        let out_c = cfg.out_channels() as u64;
        let activations: [(&str, [u64; 2]); 13] = [
            ("x_in", [n * c, lat * lat]),
            ("patches", [m, c * p * p]),
            ("pos_embed", [t, d]),
            ("t_freqs", [n, FREQ_DIM as u64]),
            ("mod", [n, 6 * d]),
            ("x", [m, d]),
            ("h", [m, d]),
            ("qkv", [m, 3 * d]),
            ("attn", [m, d]),
            ("mlp", [m, mlp]),
            ("tokens_out", [m, p * p * out_c]),
            ("out", [n * out_c, lat * lat]),
            ("t_hidden", [n, d]),
        ];
        let limit = report.max_storage_buffer_binding_size;
        let limit_name = report.binding_limit_name();
        let at = format!("batch {batch} at latent {latent}");
        for (name, [rows, cols]) in activations {
            let need = rows * cols * 4;
            if need > limit {
                let what = format!("DiT activation `{name}` [{rows}, {cols}] f32 ({at})");
                return Err(Error::Limit { what, need, limit, limit_name });
            }
        }
        for w in dit_tensors(cfg) {
            if w.bytes() > limit {
                let what = format!("DiT weight `{}` {:?}", w.name, w.shape);
                return Err(Error::Limit { what, need: w.bytes(), limit, limit_name });
            }
        }
        Ok(())
    }
}
