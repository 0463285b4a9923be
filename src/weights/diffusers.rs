//! diffusers folders as model locations, as the Hugging Face Hub holds them: a pipeline (`model_index.json` naming
//! its components, each in a subfolder: `transformer/`, `vae/`, ...) or one component (`config.json` + weights,
//! `diffusion_pytorch_model.safetensors` or `.bin`).
//!
//! Pure functions over file names and JSON bytes, so every loader uses the same rules whatever reads the files:
//! natively a folder is listed (`loader::resolve_path`); a URL loader (a Hub repo) reads `model_index.json` at the base,
//! falls back to `config.json` when there is none, and asks for the weight files in [`WEIGHT_FILES`] order (or picks
//! them from a file list with [`weights_file`]). The steps:
//! 1. [`folder`] on the folder's file names (or the files found at a base URL) -> pipeline, component, model dir;
//! 2. a pipeline: [`Pipeline::parse`] on `model_index.json`, then [`Pipeline::subfolder`] for the component wanted;
//! 3. the component's `config.json`: [`classify`] with the kind wanted (a DiT for `transformer/`, a VAE for `vae/`)
//!    refuses other architectures with a one-line error naming them;
//! 4. its weights file (`weights::single` reads `.safetensors` and `.bin` alike, with the config beside it).
//!
//! DiT configs come in two names: the legacy `Transformer2DModel` with `norm_type: "ada_norm_zero"` (the official
//! `facebook/DiT-XL-2-*` repos) and `DiTTransformer2DModel` (diffusers since 0.28).

use crate::error::{Error, Result};

/// A pipeline's index, naming its components.
pub const MODEL_INDEX: &str = "model_index.json";
/// A component's config.
pub const CONFIG: &str = "config.json";
/// A component's weights, in the order they are preferred.
pub const WEIGHT_FILES: [&str; 2] = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"];

/// What a model folder is, from the names of the files directly in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folder {
    /// `model_index.json`: a diffusers pipeline.
    Pipeline,
    /// `config.json` and a weights file (the one named here).
    Component { weights: &'static str },
    /// `model.safetensors.index.json`: a model directory written by `dit convert`.
    ModelDir,
    /// None of these.
    Unknown,
}

/// Tells a folder's layout from its file names.
pub fn folder(files: &[&str]) -> Folder {
    if files.contains(&MODEL_INDEX) {
        Folder::Pipeline
    } else if files.contains(&super::INDEX_FILE) {
        Folder::ModelDir
    } else if files.contains(&CONFIG) {
        weights_file(files).map_or(Folder::Unknown, |weights| Folder::Component { weights })
    } else {
        Folder::Unknown
    }
}

/// The preferred weights file among `files` (safetensors over `.bin`).
pub fn weights_file(files: &[&str]) -> Option<&'static str> {
    WEIGHT_FILES.into_iter().find(|w| files.contains(w))
}

/// The kinds of component this project runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// A DiT transformer.
    Dit,
    /// An SD-VAE (`AutoencoderKL`), of which the decoder is used.
    Vae,
}

impl Arch {
    fn describe(self) -> &'static str {
        match self {
            Arch::Dit => "DiT",
            Arch::Vae => "an AutoencoderKL VAE",
        }
    }
}

/// A diffusers pipeline's `model_index.json`: its class and the subfolders of the components used here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    pub class_name: String,
    pub transformer: Option<String>,
    pub vae: Option<String>,
}

impl Pipeline {
    /// Parses `model_index.json` (`what` names it in errors). A component is listed as `"name": ["library",
    /// "Class"]`; its subfolder is its name.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Pipeline> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::format(what, format!("not valid JSON ({e})")))?;
        let class_name = v["_class_name"].as_str().unwrap_or("pipeline").to_string();
        let listed = |k: &str| match &v[k] {
            serde_json::Value::Array(a) if a.len() == 2 && a.iter().all(|x| x.is_string()) => Some(k.to_string()),
            _ => None,
        };
        Ok(Pipeline { class_name, transformer: listed("transformer"), vae: listed("vae") })
    }

    /// The subfolder holding the component of `arch` (`transformer/` for DiT, `vae/`), or an error naming what the
    /// pipeline lacks.
    pub fn subfolder(&self, what: &str, arch: Arch) -> Result<&str> {
        let (sub, name) = match arch {
            Arch::Dit => (&self.transformer, "transformer"),
            Arch::Vae => (&self.vae, "vae"),
        };
        sub.as_deref().ok_or_else(|| {
            Error::input(format!(
                "{what}: this {} lists no `{name}` component; a DiT pipeline (DiTPipeline) has `transformer` and `vae`",
                self.class_name
            ))
        })
    }
}

/// What a component's `config.json` describes, refusing what this project cannot run; `want` is the kind the caller
/// needs (`None`: either). A config without `_class_name` is not classified (`Ok(None)`): the tensors decide.
pub fn classify_value(what: &str, v: &serde_json::Value, want: Option<Arch>) -> Result<Option<Arch>> {
    let Some(class) = v.get("_class_name").and_then(|c| c.as_str()) else { return Ok(None) };
    let norm = v.get("norm_type").and_then(|n| n.as_str());
    let arch = match (class, norm) {
        ("DiTTransformer2DModel", _) | ("Transformer2DModel", Some("ada_norm_zero")) => Some(Arch::Dit),
        ("AutoencoderKL", _) => Some(Arch::Vae),
        _ => None,
    };
    match (arch, want) {
        (Some(a), Some(w)) if a == w => Ok(Some(a)),
        (Some(a), None) => Ok(Some(a)),
        (found, want) => {
            let norm = norm.map(|n| format!(" (norm_type {n})")).unwrap_or_default();
            let not = match want {
                Some(w) => format!("not {}", w.describe()),
                None => "neither DiT nor an AutoencoderKL VAE".to_string(),
            };
            let hint = if found.is_none() && want != Some(Arch::Vae) {
                "; DiT is a DiTTransformer2DModel, or a Transformer2DModel with norm_type ada_norm_zero"
            } else {
                ""
            };
            let a = if class.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
            Err(Error::input(format!("{what} describes {a} {class}{norm}, {not}{hint}")))
        }
    }
}

/// [`classify_value`] on the bytes of a `config.json`.
pub fn classify(what: &str, config_json: &[u8], want: Option<Arch>) -> Result<Option<Arch>> {
    let v: serde_json::Value =
        serde_json::from_slice(config_json).map_err(|e| Error::format(what, format!("not valid JSON ({e})")))?;
    classify_value(what, &v, want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_by_their_files() {
        assert_eq!(folder(&["model_index.json", "transformer", "vae"]), Folder::Pipeline);
        assert_eq!(
            folder(&["config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors"]),
            Folder::Component { weights: "diffusion_pytorch_model.safetensors" }
        );
        assert_eq!(
            folder(&["config.json", "diffusion_pytorch_model.bin"]),
            Folder::Component { weights: "diffusion_pytorch_model.bin" }
        );
        assert_eq!(folder(&["model.safetensors.index.json", "model-00001-of-00001.safetensors"]), Folder::ModelDir);
        assert_eq!(folder(&["config.json"]), Folder::Unknown);
        assert_eq!(folder(&[]), Folder::Unknown);
    }

    #[test]
    fn pipelines_and_configs() {
        let p = Pipeline::parse(
            "model_index.json",
            br#"{"_class_name":"DiTPipeline","transformer":["diffusers","Transformer2DModel"],
                 "vae":["diffusers","AutoencoderKL"],"scheduler":["diffusers","KarrasDiffusionSchedulers"]}"#,
        )
        .unwrap();
        assert_eq!(
            (p.subfolder("x", Arch::Dit).unwrap(), p.subfolder("x", Arch::Vae).unwrap()),
            ("transformer", "vae")
        );
        let unet = Pipeline::parse("m", br#"{"_class_name":"StableDiffusionPipeline","unet":["diffusers","U"]}"#);
        let e = unet.unwrap().subfolder("m", Arch::Dit).unwrap_err().to_string();
        assert!(e.contains("StableDiffusionPipeline lists no `transformer`"), "{e}");
        assert!(Pipeline::parse("m", b"{nope").is_err());

        let dit = |c: &str| classify("t/config.json", c.as_bytes(), Some(Arch::Dit));
        assert_eq!(dit(r#"{"_class_name":"DiTTransformer2DModel"}"#).unwrap(), Some(Arch::Dit));
        assert_eq!(
            dit(r#"{"_class_name":"Transformer2DModel","norm_type":"ada_norm_zero"}"#).unwrap(),
            Some(Arch::Dit)
        );
        assert_eq!(dit(r#"{"num_layers":28}"#).unwrap(), None);
        let e = dit(r#"{"_class_name":"PixArtTransformer2DModel","norm_type":"ada_norm_single"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t/config.json describes a PixArtTransformer2DModel (norm_type ada_norm_single), not DiT; DiT is a \
             DiTTransformer2DModel, or a Transformer2DModel with norm_type ada_norm_zero"
        );
        let e = dit(r#"{"_class_name":"Transformer2DModel","norm_type":"layer_norm"}"#).unwrap_err().to_string();
        assert!(e.contains("a Transformer2DModel (norm_type layer_norm), not DiT"), "{e}");
        let e = dit(r#"{"_class_name":"AutoencoderKL"}"#).unwrap_err().to_string();
        assert!(e.contains("describes an AutoencoderKL, not DiT"), "{e}");
        let vae = classify("v", br#"{"_class_name":"AutoencoderTiny"}"#, Some(Arch::Vae)).unwrap_err().to_string();
        assert!(vae.contains("AutoencoderTiny, not an AutoencoderKL VAE"), "{vae}");
        assert!(classify("c", b"[1", None).is_err());
    }
}
