//! Natively, a location is a path: a model directory, a checkpoint file, or a diffusers folder (listed here; its
//! rules are `weights::diffusers`'s, shared with the browser's Hub reader); an `hf://` location is its folder in the
//! Hub's cache, downloaded when it is not there ([`crate::hub::local_location`]).

use super::{Arch, Bundled, Found, Planned};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::GpuWeights;
use crate::weights::diffusers::{self, Folder, Pipeline};
use crate::weights::single::FileRange;
use crate::weights::{self, DirSource, ModelIndex};
use std::path::{Path, PathBuf};

/// Where native bytes come from: files, and the Hub's cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin;

/// One model found on disk, its weights not yet read.
pub struct Opened {
    found: Found<DirSource, FileRange>,
    bundled: Bundled,
}

impl Opened {
    /// The index, when it is known before the weights are read (a model directory's).
    pub fn index(&self) -> Option<&ModelIndex> {
        self.found.index()
    }

    /// Whether the location opened is a diffusers pipeline that brings a VAE.
    pub fn bundled(&self) -> Bundled {
        self.bundled
    }
}

impl Origin {
    /// Files and the Hub's cache (`HF_HOME`, `HF_HUB_CACHE`, `HF_ENDPOINT`, `HF_TOKEN` as the Hub's own tools read
    /// them).
    pub fn new() -> Origin {
        Origin
    }

    /// Finds the `want` model at `location` ([`resolve_path`]), a model directory's index read and checked against
    /// `planned`.
    pub async fn open(&self, gpu: &Gpu, location: &str, want: Arch, planned: Option<Planned>) -> Result<Opened> {
        let local = crate::hub::local_location(Path::new(location))?;
        let bundled = match pipeline_components(&local)? {
            Some(parts) if parts.contains(&Arch::Vae) => Bundled::Vae,
            Some(_) => Bundled::NoVae,
            None => Bundled::No,
        };
        let path = resolve_path(&local, Some(want))?;
        let s = path.to_string_lossy();
        let single = path.is_file() || weights::single::is_single_file(&s);
        let sources = (|d: &str| DirSource(d.into()), |f: &str| FileRange(f.into()));
        Ok(Opened { found: Found::open(gpu, &s, single, planned, sources).await?, bundled })
    }

    /// Reads and uploads the weights of an opened model.
    pub async fn load(&self, gpu: &Gpu, opened: Opened) -> Result<(ModelIndex, GpuWeights)> {
        opened.found.load(gpu, |_, _, _| {}).await
    }

    /// Ends a load: nothing to keep natively (the Hub's cache is written as files arrive).
    pub async fn finish(&self) {}
}

/// The file or model directory that `path` stands for natively, for a model of kind `want`:
/// - a model directory (written by `dit convert`) or a checkpoint file: itself (`FILE#heads=N` too);
/// - a diffusers component folder (`config.json` + `diffusion_pytorch_model.{safetensors,bin}`): its weights file,
///   after its config is checked to describe `want` (when given);
/// - a diffusers pipeline folder (`model_index.json`): the component of `want` (`transformer/` for a DiT, `vae/`),
///   resolved as above; a pipeline needs `want`.
pub fn resolve_path(path: &Path, want: Option<Arch>) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    match diffusers::folder(&names(&list_files(path)?)) {
        Folder::ModelDir | Folder::Unknown => Ok(path.to_path_buf()),
        Folder::Component { weights } => {
            let config = path.join(diffusers::CONFIG);
            let bytes = std::fs::read(&config).map_err(|e| Error::io(&config, e))?;
            diffusers::classify(&config.display().to_string(), &bytes, want)?;
            Ok(path.join(weights))
        }
        Folder::Pipeline => {
            let Some(want) = want else {
                return Err(Error::input(format!(
                    "{}: a diffusers pipeline; name one of its components",
                    path.display()
                )));
            };
            let (what, pipeline) = read_pipeline(path)?;
            let sub = path.join(pipeline.subfolder(&what, want)?);
            let files = if sub.is_dir() { list_files(&sub)? } else { vec![] };
            match diffusers::folder(&names(&files)) {
                Folder::Component { .. } | Folder::ModelDir => resolve_path(&sub, Some(want)),
                _ => Err(Error::format(
                    sub.display().to_string(),
                    format!(
                        "the pipeline's component folder has no {} and {}",
                        diffusers::CONFIG,
                        diffusers::WEIGHT_FILES.join(" or ")
                    ),
                )),
            }
        }
    }
}

/// The components of a diffusers pipeline folder this project runs (its DiT, its VAE when listed), to resolve one at a
/// time with [`resolve_path`]; `None` when `path` is not a pipeline.
pub fn pipeline_components(path: &Path) -> Result<Option<Vec<Arch>>> {
    if !path.join(diffusers::MODEL_INDEX).is_file() {
        return Ok(None);
    }
    let (_, p) = read_pipeline(path)?;
    let mut out = vec![Arch::Dit];
    if p.vae.is_some() {
        out.push(Arch::Vae);
    }
    Ok(Some(out))
}

/// A pipeline folder's `model_index.json`, parsed, with its path for messages.
fn read_pipeline(folder: &Path) -> Result<(String, Pipeline)> {
    let index = folder.join(diffusers::MODEL_INDEX);
    let what = index.display().to_string();
    let bytes = std::fs::read(&index).map_err(|e| Error::io(&index, e))?;
    let p = Pipeline::parse(&what, &bytes)?;
    Ok((what, p))
}

fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = vec![];
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

fn names(files: &[String]) -> Vec<&str> {
    files.iter().map(String::as_str).collect()
}
