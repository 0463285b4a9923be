//! Tuned choices kept across runs per adapter: one object per adapter (name, backend, driver, fp16 path and crate
//! version, and the limits asked for when not the adapter's; in the browser also the adapter's vendor, architecture
//! and description), mapping "linear M,N,K" to the tile config's name and "attention B,T,H,D" to the split's.
//! Natively in `$DIT_TUNE_CACHE` (`off`: not kept), else `$XDG_CACHE_HOME/dit-wasm/tuning.json`, else
//! `~/.cache/dit-wasm/tuning.json`; in the browser in Cache Storage ([`CACHE_NAME`]) beside the weights. A missing,
//! unreadable or outdated entry only means tuning again; a choice whose name is no longer a config, or that does not
//! fit the device's limits, is ignored (tuned again).

use crate::gpu::{Gpu, LimitsMode, TuneKey};
use crate::ops::{attention_split_fits, linear_wg_fits, ATTENTION_SPLITS, WG_TILES};
use std::collections::BTreeMap;

/// One adapter's choices: "linear M,N,K" or "attention B,T,H,D" to the variant's name.
pub type Entries = BTreeMap<String, String>;

/// The adapter's entry name: choices are kept for exactly this adapter, driver and build. `extra` is what the
/// platform adds (in the browser the adapter's own description, which wgpu does not pass on).
pub fn adapter_key_with(gpu: &Gpu, extra: &str) -> String {
    let r = &gpu.report;
    let mut key = format!(
        "{} | {} | {} | {} | dit-wasm {}",
        r.name,
        r.backend,
        r.driver,
        r.f16_weights_path,
        env!("CARGO_PKG_VERSION")
    );
    // A device opened with WebGPU's default limits may fit fewer configs: its choices are kept apart.
    if r.limits != LimitsMode::Adapter {
        key += &format!(" | limits {}", r.limits.name());
    }
    if extra.is_empty() {
        key
    } else {
        format!("{key} | {extra}")
    }
}

/// [`adapter_key_with`] and nothing extra (natively wgpu reports the adapter in full).
pub fn adapter_key(gpu: &Gpu) -> String {
    adapter_key_with(gpu, "")
}

fn split_name(i: usize) -> String {
    let (qw, g) = ATTENTION_SPLITS[i];
    format!("{qw} queries x {g} key groups")
}

/// Records on `gpu` the choices in `entries` that it has not recorded yet.
pub fn apply(gpu: &Gpu, entries: &Entries) {
    for (key, name) in entries {
        let Some(key) = TuneKey::parse(key) else { continue };
        let choice = match key {
            TuneKey::Linear { m, n, .. } => {
                WG_TILES.iter().position(|t| t.to_string() == *name).filter(|&i| linear_wg_fits(gpu, i, m, n))
            }
            TuneKey::Attention { .. } => {
                (0..ATTENTION_SPLITS.len()).find(|&i| split_name(i) == *name).filter(|&i| attention_split_fits(gpu, i))
            }
        };
        if let Some(c) = choice {
            if gpu.choice(&key).is_none() {
                gpu.set_choice(key, c);
            }
        }
    }
}

/// `gpu`'s recorded choices, by name.
pub fn entries(gpu: &Gpu) -> Entries {
    gpu.choices()
        .into_iter()
        .map(|(key, c)| match key {
            TuneKey::Linear { .. } => (key.to_string(), WG_TILES[c].to_string()),
            TuneKey::Attention { .. } => (key.to_string(), split_name(c)),
        })
        .collect()
}

#[cfg(not(target_arch = "wasm32"))]
mod file {
    use super::*;
    use std::path::{Path, PathBuf};

    type Cache = BTreeMap<String, Entries>;

    /// Where the cache lives, if anywhere.
    pub fn path() -> Option<PathBuf> {
        match std::env::var("DIT_TUNE_CACHE") {
            Ok(p) if p == "off" => return None,
            Ok(p) if !p.is_empty() => return Some(PathBuf::from(p)),
            _ => {}
        }
        let dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))?;
        Some(dir.join("dit-wasm").join("tuning.json"))
    }

    fn read(p: &Path) -> Cache {
        std::fs::read(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Records on `gpu` the choices kept for its adapter (those not yet recorded).
    pub fn load(gpu: &Gpu) {
        if let Some(p) = path() {
            load_from(&p, gpu);
        }
    }

    /// Adds `gpu`'s choices to the cache file (best effort: a cache that cannot be written is skipped).
    pub fn save(gpu: &Gpu) {
        if let Some(p) = path() {
            save_to(&p, gpu);
        }
    }

    /// [`load`] from a given file.
    pub fn load_from(p: &Path, gpu: &Gpu) {
        if let Some(entries) = read(p).get(&adapter_key(gpu)) {
            apply(gpu, entries);
        }
    }

    /// [`save`] to a given file.
    pub fn save_to(p: &Path, gpu: &Gpu) {
        let mut cache = read(p);
        cache.entry(adapter_key(gpu)).or_default().extend(entries(gpu));
        let Ok(json) = serde_json::to_vec_pretty(&cache) else { return };
        let tmp = p.with_extension("json.tmp");
        let _ = p.parent().map(std::fs::create_dir_all);
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, p);
        }
    }
}
#[cfg(not(target_arch = "wasm32"))]
pub use file::{load, load_from, path, save, save_to};

/// The Cache Storage cache holding the browser's tuning entries (one per adapter key).
pub const CACHE_NAME: &str = "dit-wasm-tuning-v1";

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::*;
    use crate::weights::url::{cache_get, cache_put, open_cache};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    /// What the browser says about its adapter (`GPUAdapterInfo`: vendor, architecture, device, description),
    /// which wgpu does not pass on; empty where it says nothing.
    pub async fn adapter_info() -> String {
        let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED);
        let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
        let Ok(request) = get(&gpu, "requestAdapter").dyn_into::<js_sys::Function>() else { return String::new() };
        let Ok(promise) = request.call0(&gpu).and_then(|p| p.dyn_into::<js_sys::Promise>()) else {
            return String::new();
        };
        let Ok(adapter) = JsFuture::from(promise).await else { return String::new() };
        let info = get(&adapter, "info");
        ["vendor", "architecture", "device", "description"]
            .iter()
            .filter_map(|k| get(&info, k).as_string().filter(|v| !v.is_empty()))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    fn url(key: &str) -> String {
        format!("https://dit-wasm.invalid/tuning/{}", String::from(js_sys::encode_uri_component(key)))
    }

    /// Records on `gpu` the choices kept for the adapter `key` (best effort).
    pub async fn load_browser(gpu: &Gpu, key: &str) {
        let Some(cache) = open_cache(CACHE_NAME).await else { return };
        let Some(bytes) = cache_get(&cache, &url(key)).await else { return };
        if let Ok(entries) = serde_json::from_slice::<Entries>(&bytes) {
            apply(gpu, &entries);
        }
    }

    /// Keeps `gpu`'s choices under the adapter `key` (best effort).
    pub async fn save_browser(gpu: &Gpu, key: &str) {
        let Some(cache) = open_cache(CACHE_NAME).await else { return };
        if let Ok(json) = serde_json::to_vec(&entries(gpu)) {
            let _ = cache_put(&cache, &url(key), &json).await;
        }
    }
}
#[cfg(target_arch = "wasm32")]
pub use browser::{adapter_info, load_browser, save_browser};
