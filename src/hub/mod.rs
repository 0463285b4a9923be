//! `hf://OWNER/NAME[@REVISION][/SUBFOLDER]`: a model on the Hugging Face Hub (or a mirror of it) as a location.
//!
//! The parsing and the resolve URL are plain functions shared by the browser and the native CLI; natively,
//! [`fetch`] (in `download.rs`) brings the files a DiT needs into the Hub's own cache layout, where a repo
//! downloaded with Python's `huggingface_hub` is found as it is.
//!
//! Names are checked so that a location can only ever name a file inside its repo: owner and name as the Hub allows
//! them (letters, digits, `-`, `_`, `.`; no `..` or `--`), revision and subfolder segments of the same characters,
//! never `.` or `..`.

#[cfg(not(target_arch = "wasm32"))]
mod download;
#[cfg(not(target_arch = "wasm32"))]
pub use download::{fetch, local_location, HubCache};

use crate::error::{Error, Result};

/// The scheme of a Hub location.
pub const SCHEME: &str = "hf://";
/// The Hub's address, used unless another endpoint is given (`HF_ENDPOINT` natively, as the Hub's own tools do).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The revision of a location that names none.
pub const DEFAULT_REVISION: &str = "main";

/// A parsed `hf://` location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubLocation {
    pub owner: String,
    pub name: String,
    /// A branch, tag, `refs/pr/N` or a 40-hex commit.
    pub revision: String,
    /// A folder (or one file) inside the repo, `/`-separated, empty for the repo's root.
    pub subfolder: String,
}

/// Whether `s` is a Hub location (`hf://...`).
pub fn is_hub_location(s: &str) -> bool {
    s.starts_with(SCHEME)
}

/// Whether a revision is a full commit hash (40 lowercase hex digits), which never moves.
pub fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn bad(location: &str, why: &str) -> Error {
    Error::input(format!(
        "{location}: {why}; a Hub location is hf://OWNER/NAME[@REVISION][/SUBFOLDER], e.g. hf://facebook/DiT-XL-2-256"
    ))
}

/// A path segment the Hub allows: letters, digits, `-`, `_`, `.`, at most 96, never `.` or `..`.
fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// An owner or repo name: a segment that starts with a letter or digit and holds no `..` or `--` (as the Hub).
fn name_ok(s: &str) -> bool {
    segment_ok(s) && s.as_bytes()[0].is_ascii_alphanumeric() && !s.contains("..") && !s.contains("--")
}

/// Percent-decodes `%2F` / `%2f` (the only escape a revision needs: `refs%2Fpr%2F1`).
fn decode_slashes(s: &str) -> String {
    s.replace("%2F", "/").replace("%2f", "/")
}

impl HubLocation {
    /// Parses `hf://OWNER/NAME[@REVISION][/SUBFOLDER]`. A revision with slashes is written `refs/pr/N` (the Hub's
    /// pull-request refs are recognised) or percent-encoded (`refs%2Fpr%2F1`); a trailing `/` is ignored.
    pub fn parse(location: &str) -> Result<Self> {
        let Some(rest) = location.strip_prefix(SCHEME) else {
            return Err(bad(location, "does not start with hf://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (owner, rest) = rest.split_once('/').ok_or_else(|| bad(location, "no repo name after the owner"))?;
        // NAME, then `@REVISION` (a `refs/pr/N` or `refs/convert/X` ref takes three segments), then the subfolder.
        let name_end = rest.find(['@', '/']).unwrap_or(rest.len());
        let (name, rest) = rest.split_at(name_end);
        let (revision, after) = match rest.strip_prefix('@') {
            Some(r) => {
                let take = if r.starts_with("refs/pr/") || r.starts_with("refs/convert/") { 3 } else { 1 };
                let mut parts = r.splitn(take + 1, '/');
                let revision: Vec<&str> = parts.by_ref().take(take).collect();
                (decode_slashes(&revision.join("/")), parts.next().unwrap_or(""))
            }
            None => (DEFAULT_REVISION.to_string(), rest.strip_prefix('/').unwrap_or(rest)),
        };
        if !name_ok(owner) {
            return Err(bad(location, &format!("`{owner}` is not a valid owner name")));
        }
        if !name_ok(name) {
            return Err(bad(location, &format!("`{name}` is not a valid repo name")));
        }
        if !revision.split('/').all(segment_ok) {
            return Err(bad(location, &format!("`{revision}` is not a valid revision")));
        }
        if !after.is_empty() && !after.split('/').all(segment_ok) {
            return Err(bad(location, &format!("`{after}` is not a valid folder in the repo (no `.`, `..` or `//`)")));
        }
        Ok(Self { owner: owner.into(), name: name.into(), revision, subfolder: after.into() })
    }

    /// `owner/name`.
    pub fn repo_id(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The path in the repo of `file` inside the location's subfolder.
    pub fn path_in_repo(&self, file: &str) -> String {
        match (self.subfolder.is_empty(), file.is_empty()) {
            (true, _) => file.to_string(),
            (false, true) => self.subfolder.clone(),
            (false, false) => format!("{}/{file}", self.subfolder),
        }
    }

    /// The URL the Hub serves `path` (a path in the repo) at: `{endpoint}/{owner}/{name}/resolve/{revision}/{path}`,
    /// the revision percent-encoded (`refs%2Fpr%2F1`). `endpoint` without a trailing `/`, e.g. [`DEFAULT_ENDPOINT`].
    pub fn resolve_url(&self, endpoint: &str, path: &str) -> String {
        let endpoint = endpoint.trim_end_matches('/');
        let revision = self.revision.replace('/', "%2F");
        format!("{endpoint}/{}/{}/resolve/{revision}/{path}", self.owner, self.name)
    }

    /// The URL of the Hub's model info at the revision (`sha` and the file list), as `hf-hub` and huggingface.js
    /// ask for it.
    pub fn info_url(&self, endpoint: &str) -> String {
        let endpoint = endpoint.trim_end_matches('/');
        let revision = self.revision.replace('/', "%2F");
        format!("{endpoint}/api/models/{}/{}/revision/{revision}", self.owner, self.name)
    }
}

impl std::fmt::Display for HubLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.owner, self.name)?;
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        if !self.subfolder.is_empty() {
            write!(f, "/{}", self.subfolder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(owner: &str, name: &str, revision: &str, subfolder: &str) -> HubLocation {
        HubLocation { owner: owner.into(), name: name.into(), revision: revision.into(), subfolder: subfolder.into() }
    }

    #[test]
    fn parses_the_forms() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let cases = [
            ("hf://facebook/DiT-XL-2-256", loc("facebook", "DiT-XL-2-256", "main", "")),
            ("hf://facebook/DiT-XL-2-256/", loc("facebook", "DiT-XL-2-256", "main", "")),
            ("hf://facebook/DiT-XL-2-256/transformer", loc("facebook", "DiT-XL-2-256", "main", "transformer")),
            (&format!("hf://facebook/DiT-XL-2-256@{sha}/vae"), loc("facebook", "DiT-XL-2-256", sha, "vae")),
            ("hf://a/b@v1.0", loc("a", "b", "v1.0", "")),
            ("hf://a/b@refs/pr/1", loc("a", "b", "refs/pr/1", "")),
            ("hf://a/b@refs/pr/1/transformer", loc("a", "b", "refs/pr/1", "transformer")),
            ("hf://a/b@refs%2Fpr%2F12/x/y.safetensors", loc("a", "b", "refs/pr/12", "x/y.safetensors")),
        ];
        for (s, want) in cases {
            let got = HubLocation::parse(s).unwrap();
            assert_eq!(got, want, "{s}");
            let again = HubLocation::parse(&got.to_string()).unwrap();
            assert_eq!(again, want, "round trip of {s}");
        }
    }

    #[test]
    fn refuses_what_could_escape_or_is_not_a_name() {
        for s in [
            "facebook/DiT-XL-2-256",
            "hf://facebook",
            "hf://facebook/",
            "hf://../x",
            "hf://a/..",
            "hf://a/b/../c",
            "hf://a/b/./c",
            "hf://a/b//c",
            "hf://a/b@../../etc",
            "hf://a/b@",
            "hf://a/b@refs/pr/../x",
            "hf://a/b/c\\d",
            "hf://a/b%2F..",
            "hf://a/b--c",
            "hf://-a/b",
            "hf://a/b/sub dir",
            "hf://a/b/%2e%2e",
        ] {
            let e = HubLocation::parse(s).expect_err(s).to_string();
            assert!(e.contains("hf://OWNER/NAME"), "{s}: {e}");
            println!("{s}: {e}");
        }
    }

    #[test]
    fn builds_the_resolve_and_info_urls() {
        let l = HubLocation::parse("hf://facebook/DiT-XL-2-256@refs/pr/1/transformer").unwrap();
        let p = l.path_in_repo("config.json");
        assert_eq!(p, "transformer/config.json");
        assert_eq!(
            l.resolve_url(DEFAULT_ENDPOINT, &p),
            "https://huggingface.co/facebook/DiT-XL-2-256/resolve/refs%2Fpr%2F1/transformer/config.json"
        );
        assert_eq!(
            l.resolve_url("http://127.0.0.1:9/", "model_index.json"),
            "http://127.0.0.1:9/facebook/DiT-XL-2-256/resolve/refs%2Fpr%2F1/model_index.json"
        );
        assert_eq!(l.info_url("http://h"), "http://h/api/models/facebook/DiT-XL-2-256/revision/refs%2Fpr%2F1");
        assert!(is_commit("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit("main"));
    }
}
