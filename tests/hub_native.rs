//! `hf://` locations natively, against the local Hub stand-in (`tests/e2e/hub-server.mjs`, started with node): the
//! files land in the Hub's cache layout, a second fetch makes no request, a cached repo works with the Hub down, a
//! dropped connection resumes, and every bad case (404, gated, unreachable, a server ignoring Range, a location that
//! tries to leave its repo) ends in a one-line error with nothing half-downloaded left in the cache.
// Native only (processes, files, sockets).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use dit_wasm::hub::{fetch, local_location, HubCache, HubLocation};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The stand-in Hub, serving `root`, stopped on drop.
struct Hub {
    child: Child,
    url: String,
}

impl Hub {
    fn start(root: &Path) -> Hub {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/hub-server.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg("--root")
            .arg(root)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (Node 20) runs the Hub stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        Hub { child, url: v["url"].as_str().unwrap().to_string() }
    }

    fn control(&self, state: serde_json::Value) {
        ureq::post(&format!("{}/__control", self.url)).send_string(&state.to_string()).unwrap();
    }

    /// The stats since the last call (they are reset).
    fn take_stats(&self) -> serde_json::Value {
        let s = ureq::get(&format!("{}/__stats", self.url)).call().unwrap().into_json().unwrap();
        ureq::delete(&format!("{}/__stats", self.url)).call().unwrap();
        s
    }

    fn commit(&self, repo: &str) -> String {
        let v: serde_json::Value =
            ureq::get(&format!("{}/api/models/{repo}", self.url)).call().unwrap().into_json().unwrap();
        v["sha"].as_str().unwrap().to_string()
    }

    fn cache(&self, home: &Path) -> HubCache {
        HubCache { dir: home.join("hub"), endpoint: self.url.clone(), token: None, offline: false, progress: false }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes that differ per file.
fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32 % 31) as u8 ^ seed).collect()
}

fn write(root: &Path, path: &str, data: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A root with `acme/dit-pipe` (a diffusers pipeline in the official repos' layout: `.bin` transformer, a VAE with
/// both `.safetensors` and `.bin`), `acme/no-vae` (a pipeline whose `vae/` has no weights) and `acme/vae` (one
/// component at the repo's root).
fn repos() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let index = r#"{"_class_name": "DiTPipeline", "scheduler": ["diffusers", "KarrasDiffusionSchedulers"],
        "transformer": ["diffusers", "Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}"#;
    write(r, "acme/dit-pipe/model_index.json", index.as_bytes());
    write(r, "acme/dit-pipe/scheduler/scheduler_config.json", b"{}");
    let legacy_dit = br#"{"_class_name": "Transformer2DModel", "norm_type": "ada_norm_zero"}"#;
    write(r, "acme/dit-pipe/transformer/config.json", legacy_dit);
    write(r, "acme/dit-pipe/transformer/diffusion_pytorch_model.bin", &bytes(1, 300_000));
    write(r, "acme/dit-pipe/vae/config.json", br#"{"_class_name": "AutoencoderKL"}"#);
    write(r, "acme/dit-pipe/vae/diffusion_pytorch_model.safetensors", &bytes(2, 100_000));
    write(r, "acme/dit-pipe/vae/diffusion_pytorch_model.bin", &bytes(3, 100_000));
    write(r, "acme/no-vae/model_index.json", br#"{"transformer": ["diffusers", "Transformer2DModel"], "vae": []}"#);
    write(r, "acme/no-vae/transformer/config.json", b"{}");
    write(r, "acme/no-vae/transformer/diffusion_pytorch_model.bin", &bytes(5, 1000));
    write(r, "acme/no-vae/vae/config.json", b"{}");
    write(r, "acme/vae/config.json", b"{}");
    write(r, "acme/vae/diffusion_pytorch_model.safetensors", &bytes(4, 70_000));
    root
}

/// `repos()` served by a started stand-in Hub, a temporary `HF_HOME` and the cache in it.
fn started() -> (tempfile::TempDir, Hub, tempfile::TempDir, HubCache) {
    let (root, hub, home) = serving(repos());
    let cache = hub.cache(home.path());
    (root, hub, home, cache)
}

/// The stand-in Hub serving the repos under `root`, and an empty `HF_HOME`.
fn serving(root: tempfile::TempDir) -> (tempfile::TempDir, Hub, tempfile::TempDir) {
    let hub = Hub::start(root.path());
    (root, hub, tempfile::tempdir().unwrap())
}

/// The `Range` headers of the requests to the CDN origin (of the files whose path ends with `suffix`).
fn cdn_ranges(stats: &serde_json::Value, suffix: &str) -> Vec<String> {
    let log = stats["log"].as_array().unwrap();
    let cdn = log.iter().filter(|e| e["origin"] == "cdn" && e["url"].as_str().unwrap().ends_with(suffix));
    cdn.filter_map(|e| Some(e["range"].as_str()?.to_string())).collect()
}

fn loc(s: &str) -> HubLocation {
    HubLocation::parse(s).unwrap()
}

/// Every file under `dir` (following symlinks), as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Asserts a one-line error containing each of `what`.
fn one_line_error(e: dit_wasm::Error, what: &[&str]) -> String {
    let msg = e.to_string();
    println!("error: {msg}");
    assert!(!msg.contains('\n'), "more than one line: {msg:?}");
    for w in what {
        assert!(msg.contains(w), "{msg:?} lacks {w:?}");
    }
    msg
}

#[test]
fn a_pipeline_lands_in_the_cache_layout_and_a_second_fetch_makes_no_request() {
    let (root, hub, home, cache) = started();
    let commit = hub.commit("acme/dit-pipe");

    let dir = fetch(&cache, &loc("hf://acme/dit-pipe")).unwrap();
    let repo_dir = home.path().join("hub/models--acme--dit-pipe");
    assert_eq!(dir, repo_dir.join("snapshots").join(&commit));
    assert_eq!(
        files_under(&dir),
        [
            "model_index.json",
            "transformer/config.json",
            "transformer/diffusion_pytorch_model.bin",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors"
        ]
    );
    let src = root.path().join("acme/dit-pipe");
    for f in files_under(&dir) {
        assert_eq!(std::fs::read(dir.join(&f)).unwrap(), std::fs::read(src.join(&f)).unwrap(), "{f}");
        let link = std::fs::read_link(dir.join(&f)).unwrap();
        assert!(link.is_relative() && link.to_string_lossy().contains("blobs/"), "{f} -> {link:?}");
    }
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), commit);
    assert_eq!(files_under(&repo_dir.join("refs")), ["main"], "no refs/<commit> (Python writes none)");
    assert!(files_under(&repo_dir.join("blobs")).iter().all(|b| !b.contains('.')), "only blobs in blobs/");
    let stats = hub.take_stats();
    println!("first fetch: {} requests, {} bytes", stats["requests"], stats["bytes"]);
    assert!(
        stats["files"].get("acme/dit-pipe/vae/diffusion_pytorch_model.bin").is_none(),
        "the .bin beside a .safetensors"
    );
    assert!(stats["files"].get("acme/dit-pipe/scheduler/scheduler_config.json").is_none());

    for again in ["hf://acme/dit-pipe", &format!("hf://acme/dit-pipe@{commit}"), "hf://acme/dit-pipe/transformer"] {
        let d = fetch(&cache, &loc(again)).unwrap();
        assert!(d.starts_with(&dir), "{again}: {d:?}");
        let stats = hub.take_stats();
        assert_eq!(stats["requests"], 0, "{again}: {stats}");
    }
    // With the Hub down the cached repo is used as it is.
    hub.control(serde_json::json!({"down": true}));
    assert_eq!(fetch(&cache, &loc("hf://acme/dit-pipe")).unwrap(), dir);
    let dead = HubCache { endpoint: "http://127.0.0.1:9".into(), ..cache.clone() };
    assert_eq!(fetch(&dead, &loc("hf://acme/dit-pipe")).unwrap(), dir);
    assert_eq!(files_under(&repo_dir.join("refs")), ["main"]);
}

#[test]
fn a_subfolder_a_commit_and_a_component_repo() {
    let (_root, hub, home, cache) = started();
    let commit = hub.commit("acme/dit-pipe");

    let t = fetch(&cache, &loc(&format!("hf://acme/dit-pipe@{commit}/transformer"))).unwrap();
    assert!(t.ends_with(format!("snapshots/{commit}/transformer")), "{t:?}");
    assert_eq!(files_under(&t), ["config.json", "diffusion_pytorch_model.bin"]);
    let repo_dir = home.path().join("hub/models--acme--dit-pipe");
    assert_eq!(files_under(&repo_dir.join("snapshots").join(&commit)).len(), 2, "only the subfolder's files");
    assert!(!repo_dir.join("refs").join(&commit).exists(), "a commit revision writes no ref");

    let one = fetch(&cache, &loc("hf://acme/dit-pipe/vae/diffusion_pytorch_model.bin")).unwrap();
    assert_eq!(std::fs::read(&one).unwrap(), bytes(3, 100_000));
    let v = fetch(&cache, &loc("hf://acme/vae")).unwrap();
    assert_eq!(files_under(&v), ["config.json", "diffusion_pytorch_model.safetensors"]);
    // A pipeline whose vae/ has no weights brings its transformer (the loader reports what is wrong).
    let p = fetch(&cache, &loc("hf://acme/no-vae")).unwrap();
    assert_eq!(
        files_under(&p),
        ["model_index.json", "transformer/config.json", "transformer/diffusion_pytorch_model.bin"]
    );
}

#[test]
fn a_dropped_connection_resumes_from_the_byte_it_reached() {
    let (_root, hub, _home, cache) = started();
    let key = "acme/dit-pipe/transformer/diffusion_pytorch_model.bin";
    hub.control(serde_json::json!({"dropAfter": {key: 120_000}}));
    let dir = fetch(&cache, &loc("hf://acme/dit-pipe/transformer")).unwrap();
    assert_eq!(std::fs::read(dir.join("diffusion_pytorch_model.bin")).unwrap(), bytes(1, 300_000));
    let stats = hub.take_stats();
    let resumed = cdn_ranges(&stats, ".bin");
    println!("ranges asked of the CDN: {resumed:?}; bytes served: {}", stats["files"][key]["bytes"]);
    let from: Vec<u64> =
        resumed.iter().filter_map(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).collect();
    assert!(from.iter().any(|&b| b > 100_000 && b <= 120_000), "a request resumed near byte 120000: {resumed:?}");
    assert!(stats["files"][key]["bytes"].as_u64().unwrap() < 2 * 300_000, "not downloaded twice");
}

#[test]
fn a_resume_answered_with_the_whole_file_is_not_kept() {
    let (_root, hub, home, cache) = started();
    let key = "acme/dit-pipe/transformer/diffusion_pytorch_model.bin";
    // Cut at 120000 bytes, then the resumed request gets the whole file appended: 420000 bytes, caught by the size
    // check, removed, and downloaded again from the start.
    hub.control(serde_json::json!({"dropAfter": {key: 120_000}, "ignoreRange": "resume"}));
    let dir = fetch(&cache, &loc("hf://acme/dit-pipe/transformer")).unwrap();
    let got = std::fs::read(dir.join("diffusion_pytorch_model.bin")).unwrap();
    assert!(got == bytes(1, 300_000), "{} bytes", got.len());
    let blobs = home.path().join("hub/models--acme--dit-pipe/blobs");
    let sizes: Vec<u64> = files_under(&blobs).iter().map(|b| std::fs::metadata(blobs.join(b)).unwrap().len()).collect();
    assert!(!sizes.contains(&420_000), "the wrong file is gone: {sizes:?}");
    let stats = hub.take_stats();
    let ranges = cdn_ranges(&stats, "");
    println!("ranges asked of the CDN: {ranges:?}; bytes served: {}", stats["files"][key]["bytes"]);
}

#[test]
fn bad_cases_are_one_line_errors_and_leave_nothing_in_the_cache() {
    let (_root, hub, home, cache) = started();
    let nothing_cached = |what: &str| {
        let snaps = files_under(home.path());
        let snaps: Vec<String> = snaps.into_iter().filter(|f| !f.starts_with("good/")).collect();
        let complete: Vec<&String> =
            snaps.iter().filter(|f| f.contains("/snapshots/") && f.ends_with(".bin")).collect();
        assert!(complete.is_empty(), "{what}: {complete:?}");
    };

    let e = fetch(&cache, &loc("hf://acme/nothing")).unwrap_err();
    one_line_error(e, &["no such repo or file", "hf://acme/nothing", "check the name and revision"]);
    let e = fetch(&cache, &loc("hf://acme/dit-pipe@dev")).unwrap_err();
    one_line_error(e, &["no such repo or file", "Invalid rev id: dev", "check the name and revision"]);
    let e = fetch(&cache, &loc("hf://acme/dit-pipe/scheduler")).unwrap_err();
    one_line_error(e, &["no model_index.json, config.json or model.safetensors.index.json in `scheduler`"]);

    hub.control(serde_json::json!({"gated": {"acme/dit-pipe": {"tokens": ["hf_good"]}}}));
    let e = fetch(&cache, &loc("hf://acme/dit-pipe")).unwrap_err();
    one_line_error(e, &["gated or private", "accept the terms on the Hub and set HF_TOKEN", "is restricted"]);
    // The listing of a gated repo is public; the files are not: 401 at the first file.
    let bad_token = HubCache { token: Some("hf_bad".into()), ..cache.clone() };
    let e = fetch(&bad_token, &loc("hf://acme/dit-pipe")).unwrap_err();
    one_line_error(e, &["gated or private", "HF_TOKEN was sent and refused"]);
    nothing_cached("gated");
    hub.take_stats();
    let good = HubCache { token: Some("hf_good".into()), dir: home.path().join("good"), ..cache.clone() };
    fetch(&good, &loc("hf://acme/dit-pipe/transformer")).unwrap();
    let stats = hub.take_stats();
    assert!(stats["log"].as_array().unwrap().iter().filter(|e| e["origin"] == "hub").all(|e| e["auth"] == true));
    hub.control(serde_json::json!({"reset": true}));

    let other = HubCache { dir: home.path().join("other"), ..cache.clone() };
    hub.control(serde_json::json!({"ignoreRange": true}));
    let e = fetch(&other, &loc("hf://acme/dit-pipe")).unwrap_err();
    one_line_error(e, &["ignored a Range request"]);
    hub.control(serde_json::json!({"reset": true}));

    let dead = HubCache { endpoint: "http://127.0.0.1:9".into(), dir: home.path().join("dead"), ..cache.clone() };
    let e = fetch(&dead, &loc("hf://acme/dit-pipe")).unwrap_err();
    one_line_error(e, &["cannot reach the Hub", "http://127.0.0.1:9", "HF_ENDPOINT"]);
    let offline = HubCache { offline: true, dir: home.path().join("offline"), ..cache.clone() };
    let e = fetch(&offline, &loc("hf://acme/dit-pipe")).unwrap_err();
    one_line_error(e, &["HF_HUB_OFFLINE"]);
    nothing_cached("all");
}

#[test]
fn a_location_that_leaves_its_repo_is_refused_before_any_request() {
    for bad in
        ["hf://acme/../etc", "hf://acme/dit-pipe/../../x", "hf://acme/dit-pipe@../main", "hf://acme/dit-pipe/a//b"]
    {
        let e = local_location(Path::new(bad)).unwrap_err();
        one_line_error(e, &["hf://OWNER/NAME"]);
    }
    let plain = PathBuf::from("models/demo/dit");
    assert_eq!(local_location(&plain).unwrap(), plain);
}

/// The `dit` binary with the Hub's environment variables.
fn dit_env(args: &[&str], endpoint: &str, home: &Path) -> common::Out {
    common::dit_with(args, |c| {
        c.env("HF_ENDPOINT", endpoint).env("HF_HOME", home);
        c.env_remove("HF_HUB_CACHE").env_remove("HF_TOKEN").env_remove("HF_HUB_OFFLINE");
    })
}

/// `dit_env` as (success, stdout, stderr).
fn dit(args: &[&str], endpoint: &str, home: &Path) -> (bool, String, String) {
    let o = dit_env(args, endpoint, home);
    (o.ok, o.stdout, o.stderr)
}

/// The embedded demo model's DiT and VAE, served as Hub repos `acme/demo-dit` and `acme/demo-vae` of `dit convert`
/// shards (LFS files behind the CDN redirect).
fn demo_repos() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (dir, repo) in [("dit", "acme/demo-dit"), ("vae", "acme/demo-vae")] {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo").join(dir);
        for f in std::fs::read_dir(&demo).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            write(root.path(), &format!("{repo}/{name}"), &std::fs::read(&f).unwrap());
        }
    }
    root
}

#[test]
fn dit_info_reads_a_hub_repo_into_hf_home_and_a_second_run_makes_no_request() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo/dit");
    let (_root, hub, home) = serving(demo_repos());
    let (ok, out, err) = dit(&["info", "hf://acme/demo-dit"], &hub.url, home.path());
    assert!(ok, "{err}");
    assert!(out.contains("kind:        Dit") && out.contains("verified"), "{out}");
    let snapshot = home.path().join("hub/models--acme--demo-dit/snapshots").join(hub.commit("acme/demo-dit"));
    assert_eq!(files_under(&snapshot), files_under(&demo));
    let stats = hub.take_stats();
    println!("first run: {} requests, {} bytes", stats["requests"], stats["bytes"]);
    assert!(stats["bytes"].as_u64().unwrap() > 8_000_000);

    let (ok, out2, err) = dit(&["info", "hf://acme/demo-dit"], &hub.url, home.path());
    assert!(ok, "{err}");
    assert_eq!(out, out2);
    let stats = hub.take_stats();
    assert_eq!(stats["requests"], 0, "second run: {stats}");

    let (ok, _, err) = dit(&["info", "hf://acme/nothing"], &hub.url, home.path());
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    println!("{lines:?}");
    assert!(!ok && lines.len() == 1 && lines[0].starts_with("error: ") && lines[0].contains("no such repo or file"));
    let (ok, _, err) = dit(&["info", "hf://acme/demo-dit/../x"], &hub.url, home.path());
    assert!(!ok && err.trim().lines().count() == 1 && err.contains("not a valid folder"), "{err}");
}

#[test]
fn dit_sample_from_hub_locations_equals_the_local_folders_and_a_second_run_makes_no_request() {
    let (_root, hub, home) = serving(demo_repos());
    let out = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
    let run = |model: &str, vae: &str, png: &Path| {
        let png = png.to_string_lossy();
        let a = ["sample", "--model", model, "--vae", vae, "--class", "3", "--steps", "4", "--sampler", "ddim"];
        let a: Vec<&str> = a.into_iter().chain(["--seed", "5", "--quiet", "--out", &png]).collect();
        let (ok, _, err) = dit(&a, &hub.url, home.path());
        assert!(ok, "dit {}: {err}", a.join(" "));
    };
    let local = out.path().join("local.png");
    run(&demo.join("dit").to_string_lossy(), &demo.join("vae").to_string_lossy(), &local);
    hub.take_stats();
    let first = out.path().join("hub1.png");
    run("hf://acme/demo-dit", "hf://acme/demo-vae", &first);
    let stats = hub.take_stats();
    println!("first run: {} requests, {} bytes", stats["requests"], stats["bytes"]);
    assert!(stats["requests"].as_u64().unwrap() > 0);
    let second = out.path().join("hub2.png");
    run("hf://acme/demo-dit", "hf://acme/demo-vae", &second);
    assert_eq!(hub.take_stats()["requests"], 0, "the second run asks the Hub nothing");
    let png = |p: &Path| std::fs::read(p).unwrap();
    assert!(png(&first) == png(&local), "the same image as from the local folders");
    assert!(png(&second) == png(&local));
    for repo in ["demo-dit", "demo-vae"] {
        assert!(home.path().join(format!("hub/models--acme--{repo}/refs/main")).is_file());
    }
}

/// `tests/fixtures/hub` (the tiny repos in the official layout, tools/make_hub_fixtures.py) served as
/// `facebook/<name>`.
fn official_layout_repos() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(common::fixture("hub"), root.path().join("facebook")).unwrap();
    root
}

#[test]
fn dit_sample_from_an_official_layout_repo_equals_the_pipeline_folder_and_a_second_run_makes_no_request() {
    let (_root, hub, home) = serving(official_layout_repos());
    let out = tempfile::tempdir().unwrap();
    let o = |n: &str| out.path().join(n).to_string_lossy().into_owned();
    let run = |model: &str, name: &str| {
        let (png, npy) = (o(&format!("{name}.png")), o(&format!("{name}.npy")));
        let a = ["sample", "--model", model, "--class", "7", "--class", "300", "--steps", "4", "--sampler", "ddim"];
        let a: Vec<&str> =
            a.into_iter().chain(["--seed", "3", "--quiet", "--out", &png, "--latent-out", &npy]).collect();
        let r = dit_env(&a, &hub.url, home.path());
        assert!(r.ok, "dit {}: {}", a.join(" "), r.stderr);
        (std::fs::read(&png).unwrap(), std::fs::read(&npy).unwrap())
    };
    // The VAE is the pipeline's vae/ in both runs (no --vae).
    let local = run(&common::fixture("hub/DiT-tiny").to_string_lossy(), "local");
    assert_eq!(hub.take_stats()["requests"], 0);
    let first = run("hf://facebook/DiT-tiny", "hub1");
    let stats = hub.take_stats();
    println!("first run: {} requests, {} bytes; files: {}", stats["requests"], stats["bytes"], stats["files"]);
    assert!(stats["bytes"].as_u64().unwrap() > 6_000_000, "the two .bin files were downloaded");
    assert!(stats["files"].get("facebook/DiT-tiny/scheduler/scheduler_config.json").is_none());
    let second = run("hf://facebook/DiT-tiny", "hub2");
    assert_eq!(hub.take_stats()["requests"], 0, "the second run asks the Hub nothing");
    assert!(first.1 == local.1, "the same latent as from the pipeline folder");
    assert!(first.0 == local.0, "the same image as from the pipeline folder");
    assert!(second == local);
    let repo = home.path().join("hub/models--facebook--DiT-tiny");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), hub.commit("facebook/DiT-tiny"));
}

#[test]
fn official_layout_repos_that_cannot_load_are_one_line_errors_and_never_taken_for_a_model() {
    let (_root, hub, home) = serving(official_layout_repos());
    let png = home.path().join("x.png");
    let png = png.to_string_lossy();
    let cases = [
        ("PixArt-tiny", "PixArtTransformer2DModel (norm_type ada_norm_single), not DiT"),
        ("DiT-truncated", "truncated"),
        ("DiT-evil", "refuses the pickle global `os.system`"),
    ];
    for (name, says) in cases {
        let model = format!("hf://facebook/{name}");
        let a = ["sample", "--model", &model, "--class", "1", "--steps", "2", "--quiet", "--out", &png];
        let first = common::failed(&a, dit_env(&a, &hub.url, home.path()), says);
        let stats = hub.take_stats();
        println!("{name}: {} requests, {} bytes", stats["requests"], stats["bytes"]);
        if name == "PixArt-tiny" {
            // Refused from its config, before any weight byte.
            let log = stats["log"].as_array().unwrap();
            let weights: Vec<_> = log.iter().filter(|e| e["url"].as_str().unwrap().ends_with(".bin")).collect();
            assert!(weights.is_empty(), "{name}: weights were requested: {weights:?}");
        }
        // What is cached is the repo's own files, whole (no `.part` left), never a loadable model: a later run
        // gives the same error without downloading anything again.
        let blobs = home.path().join(format!("hub/models--facebook--{name}/blobs"));
        assert!(files_under(&blobs).iter().all(|b| !b.ends_with(".part")), "{name}: {:?}", files_under(&blobs));
        let again = common::failed(&a, dit_env(&a, &hub.url, home.path()), says);
        assert_eq!(first, again, "{name}: a later run");
        let stats = hub.take_stats();
        assert_eq!(stats["bytes"], 0, "{name}: a later run downloads nothing: {stats}");
        // Nor is anything written where the image would go.
        assert!(!Path::new(&*png).exists(), "{name}: an image was written");
    }
}

/// The flow maps straight from the Hub, as the releases name their files: an α-Flow training snapshot
/// (`snap-research/alphaflow/meanflow-XL-2-cfg.pt#arch=meanflow`) and a DMF state dict
/// (`kyungmnlee/DMF/dmf_xl_2_256.pt#arch=dmf&dmf-depth=20`), the tiny networks of tests/fixtures/flowmap served
/// there: the same final latents as the local files with the same fragment.
#[test]
fn flow_maps_sample_from_hub_locations_as_from_the_local_files() {
    let root = tempfile::tempdir().unwrap();
    let files = [
        ("snap-research/alphaflow/meanflow-XL-2-cfg.pt", "flowmap/meanflow.pt", "#arch=meanflow&heads=16"),
        ("kyungmnlee/DMF/dmf_xl_2_256.pt", "flowmap/dmf.pt", "#arch=dmf&dmf-depth=20&heads=16"),
    ];
    for (path, fixture, _) in files {
        write(root.path(), path, &std::fs::read(common::fixture(fixture)).unwrap());
    }
    let (_root, hub, home) = serving(root);
    let out = tempfile::tempdir().unwrap();
    for (path, fixture, fragment) in files {
        let latents = |model: &str, name: &str| {
            let z = out.path().join(format!("{name}.npy"));
            let (zs, o) = (z.to_string_lossy().into_owned(), out.path().join("o.npy").to_string_lossy().into_owned());
            let a = ["sample", "--model", model, "--class", "3", "--steps", "2", "--seed", "5", "--latent-out", &zs];
            let a: Vec<&str> = a.into_iter().chain(["--quiet", "--out", &o]).collect();
            let (ok, _, err) = dit(&a, &hub.url, home.path());
            assert!(ok, "dit {}: {err}", a.join(" "));
            dit_wasm::npy::read_f32(&z).unwrap().data
        };
        let local = latents(&format!("{}{fragment}", common::fixture(fixture).display()), "local");
        let from_hub = latents(&format!("hf://{path}{fragment}"), "hub");
        println!("hf://{path}{fragment}: {} latent values, the same as the local file's", from_hub.len());
        assert_eq!(from_hub, local);
    }
}
