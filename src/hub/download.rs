//! Natively, the files of a Hub location in the Hub's own cache layout (`models--OWNER--NAME/{blobs, snapshots/
//! <commit>, refs/<revision>}` under `HF_HUB_CACHE`, `HF_HOME/hub` or `~/.cache/huggingface/hub`), downloaded with
//! the `hf-hub` crate from `HF_ENDPOINT` (default <https://huggingface.co>).
//!
//! Which files: a pipeline (`model_index.json`) brings `transformer/` and `vae/` (when it holds weights), each its
//! `config.json` and weights (`diffusion_pytorch_model.safetensors`, else `.bin`); a component folder (`config.json`) or a `dit
//! convert` folder (`model.safetensors.index.json` and its shards) brings itself; a subfolder that names one file
//! brings that file.
//!
//! The cache first, as `hf-hub` does (and candle with it): when `refs/<revision>` names a commit whose snapshot holds
//! every file needed (or the revision is a commit that is there), it is used without a request, so a second run and
//! an offline run make none. A branch that moved on the Hub is not noticed while its files are all cached (Python's
//! `huggingface_hub` asks the Hub each time and falls back to the cache when offline); remove `refs/<branch>` or name
//! the commit to update. Otherwise the revision's commit and file list come from one request to the Hub, the files
//! are downloaded at that commit (so they always come from one commit), and `refs/<revision>` is written as Python
//! does. `HF_HUB_OFFLINE=1` forbids the request.
//!
//! A download goes to `blobs/<etag>.part` (resumed from its length by the next try or the next run) and is renamed
//! only when complete; its size is then checked against the Hub's listing and a wrong one is removed.
//!
//! What `hf-hub` 0.4 (the last with a sync API; 1.x is async only) does not do, done here: `HF_HUB_CACHE`, `HF_TOKEN`,
//! `HF_HUB_OFFLINE`, the size check, and a refs file for a commit revision (it writes `refs/<commit>`, which Python
//! never does; it is removed). It also needs a server that answers a `Range` request (it reads the size from
//! `Content-Range`) and sets no timeout on a stalled connection.

use super::{is_commit, is_hub_location, HubLocation, DEFAULT_ENDPOINT};
use crate::error::{Error, Result};
use crate::weights::diffusers::{classify, Arch};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

/// The weight files of a diffusers component, in order of preference.
const WEIGHTS: [&str; 2] = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"];
/// The components of a pipeline that a DiT sampler reads.
const COMPONENTS: [&str; 2] = ["transformer", "vae"];
/// Retries of one file after a dropped connection, each resuming from the byte reached.
const RETRIES: usize = 3;

/// Where the Hub's files are kept and fetched from: read from the environment as the Hub's own tools read it.
#[derive(Clone, Debug)]
pub struct HubCache {
    /// The hub cache folder (holding `models--OWNER--NAME`).
    pub dir: PathBuf,
    /// The Hub or a mirror, without a trailing `/`.
    pub endpoint: String,
    /// Sent as a bearer token (gated and private repos).
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: never ask the Hub.
    pub offline: bool,
    /// Show a progress bar per file.
    pub progress: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl HubCache {
    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`; `HF_ENDPOINT`; `HF_TOKEN`, else the
    /// token file (`HF_TOKEN_PATH`, else `HF_HOME/token`); `HF_HUB_OFFLINE`. A progress bar when stderr is a terminal.
    pub fn from_env() -> Result<Self> {
        use std::io::IsTerminal;
        let home = match env("HF_HOME") {
            Some(h) => Some(PathBuf::from(h)),
            None => env("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| env("HOME").or_else(|| env("USERPROFILE")).map(|h| Path::new(&h).join(".cache")))
                .map(|c| c.join("huggingface")),
        };
        let dir = match env("HF_HUB_CACHE") {
            Some(d) => PathBuf::from(d),
            None => home.as_ref().map(|h| h.join("hub")).ok_or_else(|| {
                Error::input(
                    "hf://: no cache folder for the Hub's files: set HF_HOME or HF_HUB_CACHE (HOME is not set)",
                )
            })?,
        };
        let token_file = env("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| home.map(|h| h.join("token")));
        let token = env("HF_TOKEN").or_else(|| {
            let t = std::fs::read_to_string(token_file?).ok()?;
            Some(t.trim().to_string()).filter(|t| !t.is_empty())
        });
        let offline = env("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        Ok(Self {
            dir,
            endpoint: env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').to_string(),
            token: token.map(|t| t.trim().to_string()),
            offline,
            progress: std::io::stderr().is_terminal(),
        })
    }

    /// `models--OWNER--NAME` in the cache.
    pub fn repo_dir(&self, loc: &HubLocation) -> PathBuf {
        self.dir.join(format!("models--{}--{}", loc.owner, loc.name))
    }

    /// The snapshot folder of a commit.
    pub fn snapshot(&self, loc: &HubLocation, commit: &str) -> PathBuf {
        self.repo_dir(loc).join("snapshots").join(commit)
    }

    fn ref_path(&self, loc: &HubLocation, revision: &str) -> PathBuf {
        revision.split('/').fold(self.repo_dir(loc).join("refs"), |p, s| p.join(s))
    }

    /// The commit the cache knows for the location's revision: the revision itself when it is a commit, else what
    /// `refs/<revision>` holds.
    pub fn cached_commit(&self, loc: &HubLocation) -> Option<String> {
        if is_commit(&loc.revision) {
            return Some(loc.revision.clone());
        }
        let c = std::fs::read_to_string(self.ref_path(loc, &loc.revision)).ok()?;
        Some(c.trim().to_string()).filter(|c| is_commit(c))
    }
}

/// A location natively: a `hf://` location ([`fetch`]ed, with the cache from the environment) is replaced by its local
/// path, a `#...` suffix kept (`hf://o/n/x.safetensors#heads=16`); any other location is returned as it is.
pub fn local_location(location: &Path) -> Result<PathBuf> {
    let Some(s) = location.to_str().filter(|s| is_hub_location(s)) else {
        return Ok(location.to_path_buf());
    };
    let (hub, suffix) = match s.split_once('#') {
        Some((h, f)) => (h, format!("#{f}")),
        None => (s, String::new()),
    };
    let loc = HubLocation::parse(hub)?;
    let path = fetch(&HubCache::from_env()?, &loc)?;
    if suffix.is_empty() {
        Ok(path)
    } else {
        let mut p = path.into_os_string();
        p.push(suffix);
        Ok(p.into())
    }
}

/// The local folder (or file) of a Hub location, with every file a DiT needs from it in the cache: taken from the
/// cache when it is all there, else downloaded (see the module doc).
pub fn fetch(cache: &HubCache, loc: &HubLocation) -> Result<PathBuf> {
    if let Some(commit) = cache.cached_commit(loc) {
        let snapshot = cache.snapshot(loc, &commit);
        if complete(&snapshot, &loc.subfolder) {
            return Ok(snapshot.join(&loc.subfolder));
        }
    }
    if cache.offline {
        return Err(Error::input(format!(
            "{loc}: HF_HUB_OFFLINE is set and the cache ({}) does not hold its files; unset it to download them",
            cache.repo_dir(loc).display()
        )));
    }
    let api = ApiBuilder::from_cache(Cache::new(cache.dir.clone()))
        .with_endpoint(cache.endpoint.clone())
        .with_token(cache.token.clone())
        .with_progress(cache.progress)
        .with_retries(RETRIES)
        .build()
        .map_err(|e| api_error(cache, loc, "", e))?;
    let Info { sha: commit, siblings } = listing(&api, cache, loc)?;
    let mut wanted = select(loc, &commit, &siblings)?;
    // The configs (small) before the weights.
    wanted.sort_by_key(|f| !f.rfilename.ends_with(".json"));
    let snapshot = cache.snapshot(loc, &commit);
    let commit_ref = cache.ref_path(loc, &commit);
    let had_commit_ref = commit_ref.exists();
    // Downloads at the commit, so that every file comes from it even if the branch moves meanwhile.
    let repo = api.repo(Repo::with_revision(loc.repo_id(), RepoType::Model, commit.clone()));
    // A config that describes another architecture is refused before any weight byte is downloaded.
    let [transformer, vae] = COMPONENTS;
    let check = |f: &Sibling| {
        let want = match f.rfilename.rsplit_once('/') {
            Some((dir, "config.json")) if dir.ends_with(transformer) => Some(Arch::Dit),
            Some((dir, "config.json")) if dir.ends_with(vae) => Some(Arch::Vae),
            Some((_, "config.json")) => None,
            None if f.rfilename == "config.json" => None,
            _ => return Ok(()),
        };
        let path = snapshot.join(&f.rfilename);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        classify(&loc.resolve_url(&cache.endpoint, &f.rfilename), &bytes, want).map(|_| ())
    };
    let done = wanted.iter().try_for_each(|f| download(&repo, cache, loc, &snapshot, f).and_then(|_| check(f)));
    // hf-hub writes `refs/<commit>` for a download at a commit; Python's cache has none.
    if !had_commit_ref {
        let _ = std::fs::remove_file(&commit_ref);
    }
    done?;
    if !is_commit(&loc.revision) {
        write_ref(&cache.ref_path(loc, &loc.revision), &commit)?;
    }
    Ok(snapshot.join(&loc.subfolder))
}

/// One file into the snapshot (unless it is there), checked against the listed size: a wrong one is removed and
/// downloaded once more from the start.
fn download(repo: &ApiRepo, cache: &HubCache, loc: &HubLocation, snapshot: &Path, file: &Sibling) -> Result<()> {
    let Sibling { rfilename: path, size } = file;
    let local = snapshot.join(path);
    if local.is_file() && size.is_none_or(|s| file_len(&local) == Some(s)) {
        return Ok(());
    }
    for _ in 0..2 {
        let got = repo.download(path).map_err(|e| api_error(cache, loc, path, e))?;
        remove_lock(&got);
        let found = file_len(&got).unwrap_or(0);
        if size.is_none_or(|s| found == s) {
            return Ok(());
        }
        discard(&got);
    }
    Err(Error::Download {
        url: loc.resolve_url(&cache.endpoint, path),
        msg: format!(
            "the download has the wrong size (the Hub lists {} bytes); nothing was kept, try again",
            size.unwrap_or(0)
        ),
    })
}

/// The size of a file (through a symlink), if it is there.
fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len())
}

/// Removes a downloaded file that is wrong: its blob and its snapshot link.
fn discard(pointer: &Path) {
    if let Ok(blob) = std::fs::canonicalize(pointer) {
        let _ = std::fs::remove_file(blob);
    }
    let _ = std::fs::remove_file(pointer);
}

/// `hf-hub` leaves `blobs/<etag>.lock` beside the blob; the Hub's cache holds only blobs there.
fn remove_lock(pointer: &Path) {
    if let Ok(blob) = std::fs::canonicalize(pointer) {
        let _ = std::fs::remove_file(blob.with_extension("lock"));
    }
}

fn write_ref(path: &Path, commit: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    // Written beside and renamed, so that a reader never sees half a hash.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, commit).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Whether a snapshot holds every file a location needs (see the module doc), without asking the Hub.
fn complete(snapshot: &Path, subfolder: &str) -> bool {
    let root = snapshot.join(subfolder);
    if root.is_file() {
        return true;
    }
    let index = root.join("model_index.json");
    if subfolder.is_empty() && index.is_file() {
        let Ok(json) = std::fs::read(&index) else { return false };
        let Ok(serde_json::Value::Object(listed)) = serde_json::from_slice(&json) else { return false };
        let [transformer, vae] = COMPONENTS;
        return component_complete(&root.join(transformer))
            && (!listed.contains_key(vae) || component_complete(&root.join(vae)));
    }
    component_complete(&root)
}

/// A diffusers component (config + weights) or a `dit convert` folder (index + every shard it names).
fn component_complete(dir: &Path) -> bool {
    if dir.join("config.json").is_file() {
        return WEIGHTS.iter().any(|w| dir.join(w).is_file());
    }
    let Ok(json) = std::fs::read(dir.join("model.safetensors.index.json")) else { return false };
    let Ok(index) = serde_json::from_slice::<serde_json::Value>(&json) else { return false };
    let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) else { return false };
    map.values().filter_map(|f| f.as_str()).all(|f| !f.contains('/') && !f.contains("..") && dir.join(f).is_file())
}

/// One file of the Hub's listing: its path in the repo and (with `?blobs=true`) its size.
#[derive(Clone, serde::Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Info {
    sha: String,
    siblings: Vec<Sibling>,
}

/// The revision's commit and its files with their sizes: one request.
fn listing(api: &Api, cache: &HubCache, loc: &HubLocation) -> Result<Info> {
    let url = loc.info_url(&cache.endpoint);
    let repo = api.repo(Repo::with_revision(loc.repo_id(), RepoType::Model, loc.revision.clone()));
    let resp = repo.info_request().query("blobs", "true").call().map_err(|e| http_error(cache, loc, "", e))?;
    let info: Info = resp.into_json().map_err(|e| Error::Download {
        url: url.clone(),
        msg: format!("not the Hub's model info ({e}); is HF_ENDPOINT a Hub?"),
    })?;
    if !is_commit(&info.sha) {
        return Err(Error::Download { url, msg: format!("the Hub's commit `{}` is not a commit hash", info.sha) });
    }
    Ok(info)
}

/// The files (path in the repo, size) a location needs at a commit, chosen from the repo's listing.
fn select(loc: &HubLocation, commit: &str, files: &[Sibling]) -> Result<Vec<Sibling>> {
    let find = |p: &str| files.iter().find(|f| f.rfilename == p).cloned();
    let sub = &loc.subfolder;
    if let Some(file) = find(sub).filter(|_| !sub.is_empty()) {
        return Ok(vec![file]);
    }
    let short = &commit[..8];
    let component = |dir: &str| -> Result<Vec<Sibling>> {
        let at = |f: &str| if dir.is_empty() { f.to_string() } else { format!("{dir}/{f}") };
        if let Some(config) = find(&at("config.json")) {
            let weights = WEIGHTS.iter().find_map(|w| find(&at(w))).ok_or_else(|| {
                Error::input(format!(
                    "{loc}: `{}` has no {} or {} at {short}; is this a diffusers model?",
                    at(""),
                    WEIGHTS[0],
                    WEIGHTS[1]
                ))
            })?;
            return Ok(vec![config, weights]);
        }
        if let Some(index) = find(&at("model.safetensors.index.json")) {
            let prefix = at("");
            let shards = files.iter().filter(|f| {
                f.rfilename.strip_prefix(&prefix).is_some_and(|n| !n.contains('/') && n.ends_with(".safetensors"))
            });
            return Ok(std::iter::once(index).chain(shards.cloned()).collect());
        }
        Err(Error::input(format!(
            "{loc}: no model_index.json, config.json or model.safetensors.index.json in `{}` at {short}; is this a \
             DiT or VAE repo (or name its subfolder)?",
            if dir.is_empty() { "/" } else { dir }
        )))
    };
    if sub.is_empty() {
        if let Some(index) = find("model_index.json") {
            // The transformer is needed; the VAE is brought when it is whole (the loader says what a missing one
            // means, and a bad transformer is the error to report first).
            let mut out = vec![index];
            for c in COMPONENTS {
                match component(c) {
                    Ok(files) => out.extend(files),
                    Err(e) if c == COMPONENTS[0] => return Err(e),
                    Err(_) => {}
                }
            }
            return Ok(out);
        }
    }
    component(sub)
}

/// An `hf-hub` error as one line that says what to do.
fn api_error(cache: &HubCache, loc: &HubLocation, path: &str, e: ApiError) -> Error {
    let url = loc.resolve_url(&cache.endpoint, path);
    match e {
        ApiError::RequestError(e) => http_error(cache, loc, path, *e),
        ApiError::TooManyRetries(e) => match *e {
            ApiError::RequestError(e) => http_error(cache, loc, path, *e),
            e => Error::Download { url, msg: format!("failed after {RETRIES} retries: {}", one_line(&e.to_string())) },
        },
        ApiError::MissingHeader(h) if h.eq_ignore_ascii_case("content-range") => Error::Download {
            url,
            msg: "the server ignored a Range request (no Content-Range); hf:// needs a Hub or mirror that serves \
                  byte ranges"
                .into(),
        },
        ApiError::IoError(e) => Error::io(cache.repo_dir(loc), e),
        ApiError::LockAcquisition(p) => Error::Download {
            url,
            msg: format!("another process is downloading this file ({} is locked); wait for it", p.display()),
        },
        e => Error::Download { url, msg: one_line(&e.to_string()) },
    }
}

/// A `ureq` error (an HTTP status or a transport failure) as one line that says what to do.
fn http_error(cache: &HubCache, loc: &HubLocation, path: &str, e: ureq::Error) -> Error {
    let url = if path.is_empty() { loc.info_url(&cache.endpoint) } else { loc.resolve_url(&cache.endpoint, path) };
    let what = if path.is_empty() { loc.to_string() } else { format!("{loc} ({path})") };
    match e {
        ureq::Error::Status(status, resp) => {
            let code = resp.header("x-error-code").unwrap_or_default().to_string();
            let said = resp
                .into_string()
                .ok()
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(one_line))
                .map(|m| format!(" (the Hub says: {m})"))
                .unwrap_or_default();
            let msg = match (status, code.as_str()) {
                (404, _) => format!("no such repo or file: {what}{said}; check the name and revision"),
                (401, "RepoNotFound") => format!(
                    "no such repo or file, or a private one: {what}{said}; check the name and revision, or set HF_TOKEN"
                ),
                (401 | 403, _) => {
                    let token =
                        if cache.token.is_some() { "HF_TOKEN was sent and refused" } else { "no HF_TOKEN is set" };
                    format!("gated or private: {what}{said}; accept the terms on the Hub and set HF_TOKEN ({token})")
                }
                _ => format!("HTTP {status} for {what}{said}"),
            };
            Error::Download { url, msg }
        }
        ureq::Error::Transport(t) => Error::Download {
            url: cache.endpoint.clone(),
            msg: format!(
                "cannot reach the Hub for {what} ({}); check the network or HF_ENDPOINT",
                one_line(&t.to_string())
            ),
        },
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
