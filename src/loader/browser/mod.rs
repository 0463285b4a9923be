//! In the browser, a location is a URL: a model directory (shards verified and kept in Cache Storage,
//! `weights::url`), one checkpoint read by HTTP Range requests, or an `hf://` repo ([`hub`]: a pipeline's components
//! or one file, resolved against the Hub endpoint, fp16 tensors kept in Cache Storage).

mod hub;

use super::{Arch, Bundled, Found, Planned};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::hub::HubLocation;
use crate::model::GpuWeights;
use crate::weights::url::{RangeUrl, UrlSource};
use crate::weights::{self, ModelIndex};
use std::cell::RefCell;
use std::rc::Rc;

/// How the browser fetches: Cache Storage on or off, the stall timeout, the JS progress callback, and the Hub
/// endpoint that `hf://` locations resolve against.
pub struct Fetch {
    pub cache: bool,
    pub timeout_ms: u32,
    pub on_progress: Option<js_sys::Function>,
    pub hub_endpoint: String,
}

/// Where browser bytes come from: fetch, Cache Storage and the Hub. A Hub repo is resolved once per origin (its
/// revision, and whether it is a pipeline), however many of its components are loaded.
pub struct Origin {
    fetch: Fetch,
    repos: RefCell<Vec<(HubLocation, Rc<hub::Resolved>)>>,
}

/// One model found, its weights not yet fetched.
pub struct Opened(Inner);

enum Inner {
    /// A model directory (its index read) or one checkpoint file at a URL.
    Found(Found<UrlSource, RangeUrl>),
    /// One checkpoint file of a Hub repo, `hf://OWNER/NAME[@REVISION]/FILE#FRAGMENT`.
    HubFile { location: String, planned: Option<Planned> },
    /// A component of a resolved Hub repo: a pipeline's transformer or vae (`component`), or the repo itself.
    HubComponent { repo: Rc<hub::Resolved>, component: Option<String>, planned: Option<Planned>, bundled: Bundled },
}

impl Opened {
    /// The index, when it is known before the weights are fetched (a model directory's).
    pub fn index(&self) -> Option<&ModelIndex> {
        match &self.0 {
            Inner::Found(found) => found.index(),
            _ => None,
        }
    }

    /// Whether the location opened is a diffusers pipeline that brings a VAE.
    pub fn bundled(&self) -> Bundled {
        match &self.0 {
            Inner::HubComponent { bundled, .. } => *bundled,
            _ => Bundled::No,
        }
    }
}

impl Origin {
    pub fn new(fetch: Fetch) -> Origin {
        Origin { fetch, repos: RefCell::new(vec![]) }
    }

    /// Finds the `want` model at `location` (a Hub pipeline gives that component); a model directory's index is
    /// read and checked against `planned`.
    pub async fn open(&self, gpu: &Gpu, location: &str, want: Arch, planned: Option<Planned>) -> Result<Opened> {
        let single = weights::single::is_single_file(location);
        if !crate::hub::is_hub_location(location) {
            let f = &self.fetch;
            let sources = (
                |d: &str| UrlSource::new(d, f.cache, f.timeout_ms, f.on_progress.clone()),
                |u: &str| RangeUrl::new(u, f.timeout_ms, f.on_progress.clone()),
            );
            return Ok(Opened(Inner::Found(Found::open(gpu, location, single, planned, sources).await?)));
        }
        if single {
            return Ok(Opened(Inner::HubFile { location: location.to_string(), planned }));
        }
        let repo = self.resolve(&HubLocation::parse(location)?).await?;
        let (component, bundled) = match &repo.pipeline {
            None => (None, Bundled::No),
            Some((dit, vae)) => {
                let component = match want {
                    Arch::Dit => dit.clone(),
                    Arch::Vae => vae
                        .clone()
                        .ok_or_else(|| Error::input(format!("{location}: the pipeline lists no `vae` component")))?,
                };
                (Some(component), if vae.is_some() { Bundled::Vae } else { Bundled::NoVae })
            }
        };
        Ok(Opened(Inner::HubComponent { repo, component, planned, bundled }))
    }

    /// Fetches (or reads from Cache Storage), verifies and uploads the weights of an opened model.
    pub async fn load(&self, gpu: &Gpu, opened: Opened) -> Result<(ModelIndex, GpuWeights)> {
        match opened.0 {
            Inner::Found(found) => found.load(gpu, |src: &RangeUrl, done, all| src.report(done, all)).await,
            Inner::HubFile { location, planned } => hub::load_file(gpu, &location, &self.fetch, planned).await,
            Inner::HubComponent { repo, component, planned, .. } => {
                hub::load_component(gpu, &repo, component.as_deref(), &self.fetch, planned).await
            }
        }
    }

    /// Ends a load: keeps each Hub repo's resolution for offline visits, when every component loaded from it was
    /// kept in Cache Storage.
    pub async fn finish(&self) {
        let repos = self.repos.borrow().clone();
        for (asked, repo) in &repos {
            hub::remember(asked, repo, &self.fetch).await;
        }
    }

    /// The resolution of a Hub repo (its revision's commit, whether it is a pipeline), asked once.
    async fn resolve(&self, asked: &HubLocation) -> Result<Rc<hub::Resolved>> {
        if let Some((_, r)) = self.repos.borrow().iter().find(|(a, _)| a == asked) {
            return Ok(r.clone());
        }
        let r = Rc::new(hub::resolve(asked, &self.fetch).await?);
        self.repos.borrow_mut().push((asked.clone(), r.clone()));
        Ok(r)
    }
}
