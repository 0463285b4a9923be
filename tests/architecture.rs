//! The crate's layers, held by a test (docs/DESIGN.md explains them): it reads `src/` and fails on an import that
//! goes against the dependency order, on an import circle between the files of one module (the `dit` binary's files
//! included), on a wgpu object created outside `gpu`, and on a function over 80 lines that `LONG_FUNCTIONS` does not
//! name with its reason. Comments are skipped, so a doc link may name any module.
// Native only (reads the source tree); the browser tests are tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of the library (and the `dit` binary) with the modules it may import, bottom to top:
/// `error`/`util` -> `arch`, `gpu` -> `weights` (arch only), `hub` (weights), `ops` (gpu), `diffusion` -> `model`
/// -> `loader`, `tune` -> `pipeline` -> `bench` -> `web`, `bin`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("util", &["error"]),
    ("npy", &["error"]),
    ("arch", &["error", "util"]),
    ("gpu", &["error", "util"]),
    ("weights", &["error", "util", "arch"]),
    ("hub", &["error", "util", "arch", "weights"]),
    ("ops", &["error", "util", "arch", "gpu"]),
    ("diffusion", &["error", "util", "gpu"]),
    ("model", &["error", "util", "arch", "gpu", "ops"]),
    ("loader", &["error", "util", "arch", "gpu", "model", "weights", "hub"]),
    ("tune", &["error", "util", "arch", "gpu", "ops", "model", "weights"]),
    ("pipeline", &["error", "util", "arch", "gpu", "ops", "model", "diffusion", "tune"]),
    ("bench", &["error", "util", "arch", "gpu", "ops", "model", "weights", "diffusion", "tune", "pipeline"]),
    (
        "web",
        &["error", "arch", "gpu", "ops", "model", "weights", "hub", "diffusion", "loader", "tune", "pipeline", "bench"],
    ),
    (
        "bin",
        &["error", "npy", "arch", "gpu", "ops", "model", "weights", "hub", "diffusion", "loader", "pipeline", "bench"],
    ),
];

/// The most lines a function in `src/` may span (signature to closing brace, comments included).
const MAX_FUNCTION_LINES: usize = 80;

/// Functions allowed to be longer, each with why (`file::function`, as `long_functions` names them).
const LONG_FUNCTIONS: &[(&str, &str)] = &[];

/// `#[macro_export]` macros (they live at the crate root) and the module that defines them.
const MACROS: &[(&str, &str)] = &[("texture_decl", "gpu"), ("shader", "gpu")];

/// Crate-root names and the module they belong to: the macros, and what lib.rs re-exports (`pub use m::{A, B};`).
fn root_items(root: &Path) -> BTreeMap<String, String> {
    let mut items: BTreeMap<String, String> = MACROS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    for stmt in code(&root.join("lib.rs")).split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else { continue };
        let Some((module, names)) = rest.split_once("::") else { continue };
        for name in names.trim_matches(|c| c == '{' || c == '}' || c == ' ').split(',') {
            let name = name.trim().rsplit("::").next().unwrap_or("").to_string();
            items.insert(name, module.trim().to_string());
        }
    }
    items
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without comments (line comments and doc comments; the crate has no block comments).
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The identifiers that follow `prefix` (`crate::`, `dit_wasm::`, `super::`) in `code`, grouped imports included
/// (`crate::{a::X, b}`).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let ident = |s: &str| s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(ident).filter(|s| !s.is_empty()));
        } else {
            let id = ident(rest);
            if !id.is_empty() {
                out.push(id);
            }
        }
    }
    out
}

/// The top-level module a file belongs to (`bin` for the binary; None for lib.rs).
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    if rel.components().count() == 1 {
        let stem = first.trim_end_matches(".rs");
        return (stem != "lib").then(|| stem.to_string());
    }
    Some(first)
}

/// Violations of the order: (file, imported module).
fn order_violations(root: &Path) -> Vec<String> {
    let allowed: BTreeMap<&str, BTreeSet<&str>> =
        ALLOWED.iter().map(|(m, deps)| (*m, deps.iter().copied().collect())).collect();
    let root_items = root_items(root);
    let mut files = vec![];
    rust_files(root, &mut files);
    let mut bad = vec![];
    for f in &files {
        let rel = f.strip_prefix(root).unwrap();
        let Some(module) = top_module(rel) else { continue };
        let Some(ok) = allowed.get(module.as_str()) else {
            bad.push(format!("{}: module `{module}` has no place in the order (add it to ALLOWED)", rel.display()));
            continue;
        };
        let code = code(f);
        let prefix = if module == "bin" { "dit_wasm::" } else { "crate::" };
        for target in paths_after(&code, prefix) {
            let target = root_items.get(&target).cloned().unwrap_or(target);
            if target != module && !ok.contains(target.as_str()) {
                bad.push(format!("{}: `{module}` imports `{target}`, which is not below it", rel.display()));
            }
        }
    }
    bad
}

/// Import circles between the files of one folder (`super::x` from a sibling file), e.g. ops/conv <-> ops/linear.
fn circles(root: &Path) -> Vec<String> {
    let mut files = vec![];
    rust_files(root, &mut files);
    let mut graph: BTreeMap<(PathBuf, String), BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let mut dir = f.parent().unwrap().to_path_buf();
        let mut stem = f.file_stem().unwrap().to_str().unwrap().to_string();
        if stem == "lib" || stem == "main" {
            continue;
        }
        // A folder's mod.rs is the folder's node among its siblings (its `super::` is the folder's parent).
        if stem == "mod" {
            stem = dir.file_name().unwrap().to_str().unwrap().to_string();
            dir = dir.parent().unwrap().to_path_buf();
        }
        let siblings: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let s = p.file_stem()?.to_str()?.to_string();
                (p.extension().is_some_and(|x| x == "rs") || p.is_dir()).then_some(s)
            })
            .collect();
        // In the binary the files are children of main.rs, so a sibling is `crate::x` there.
        let mut deps = paths_after(&code(f), "super::");
        if f.strip_prefix(root).is_ok_and(|r| r.starts_with("bin")) {
            deps.extend(paths_after(&code(f), "crate::"));
        }
        let deps = deps.into_iter().filter(|d| d != &stem && siblings.contains(d) && d != "mod").collect();
        graph.insert((dir, stem), deps);
    }
    let mut found = vec![];
    for ((dir, a), deps) in &graph {
        for b in deps {
            // A circle through a and b: b reaches a.
            let mut seen = BTreeSet::new();
            let mut stack = vec![b.clone()];
            while let Some(n) = stack.pop() {
                if !seen.insert(n.clone()) {
                    continue;
                }
                if let Some(next) = graph.get(&(dir.clone(), n.clone())) {
                    stack.extend(next.iter().cloned());
                }
            }
            if seen.contains(a) {
                let folder = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
                found.push(format!("{folder}: {a} -> {b} -> ... -> {a}"));
            }
        }
    }
    found
}

/// Functions (free, in impls and traits' default bodies) longer than `max` lines: "file::name: N lines".
fn long_functions(root: &Path, max: usize) -> Vec<String> {
    struct Finder<'a> {
        file: &'a str,
        max: usize,
        found: Vec<String>,
    }
    impl Finder<'_> {
        fn check(&mut self, name: &syn::Ident, sig: &syn::Signature, block: &syn::Block) {
            let lines = block.brace_token.span.close().end().line + 1 - sig.fn_token.span.start().line;
            if lines > self.max {
                self.found.push(format!("{}::{name}: {lines} lines", self.file));
            }
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            self.check(&f.sig.ident, &f.sig, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
            self.check(&f.sig.ident, &f.sig, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
        fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
            if let Some(block) = &f.default {
                self.check(&f.sig.ident, &f.sig, block);
            }
            syn::visit::visit_trait_item_fn(self, f);
        }
    }
    let mut files = vec![];
    rust_files(root, &mut files);
    let mut found = vec![];
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut finder = Finder { file: &rel, max, found: vec![] };
        syn::visit::Visit::visit_file(&mut finder, &parsed);
        found.extend(finder.found);
    }
    found
}

/// wgpu objects created outside `gpu` (the one place that talks to the device).
fn wgpu_creations(root: &Path) -> Vec<String> {
    const CREATE: [&str; 10] = [
        "create_buffer",
        "create_texture",
        "create_view",
        "create_bind_group",
        "create_compute_pipeline",
        "create_shader_module",
        "create_pipeline_layout",
        "create_sampler",
        "create_query_set",
        "create_command_encoder",
    ];
    let mut files = vec![];
    rust_files(root, &mut files);
    let mut bad = vec![];
    for f in &files {
        let rel = f.strip_prefix(root).unwrap();
        if rel.starts_with("gpu") {
            continue;
        }
        let code = code(f);
        for c in CREATE {
            if code.contains(&format!(".{c}(")) {
                bad.push(format!("{}: calls `{c}` (only `gpu` creates wgpu objects)", rel.display()));
            }
        }
    }
    bad
}

#[test]
fn imports_follow_the_layer_order() {
    let bad = order_violations(&src());
    println!("{} imports against the order", bad.len());
    assert!(bad.is_empty(), "imports against the layer order:\n{}", bad.join("\n"));
}

#[test]
fn no_import_circles_between_files() {
    let found = circles(&src());
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn functions_stay_short() {
    let long = long_functions(&src(), MAX_FUNCTION_LINES);
    println!("{} functions over {MAX_FUNCTION_LINES} lines:\n{}", long.len(), long.join("\n"));
    let named = |l: &String| LONG_FUNCTIONS.iter().any(|(f, _)| l.starts_with(&format!("{f}:")));
    let unnamed: Vec<_> = long.iter().filter(|l| !named(l)).collect();
    assert!(unnamed.is_empty(), "functions over {MAX_FUNCTION_LINES} lines (split them, or name them in LONG_FUNCTIONS with why):\n{unnamed:#?}");
    let stale: Vec<_> =
        LONG_FUNCTIONS.iter().filter(|(f, _)| !long.iter().any(|l| l.starts_with(&format!("{f}:")))).collect();
    assert!(stale.is_empty(), "LONG_FUNCTIONS names functions that are no longer long: {stale:?}");
}

#[test]
fn only_gpu_creates_wgpu_objects() {
    let bad = wgpu_creations(&src());
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The checks themselves can fail: a copy of `src/` with one import against the order, one circle and one texture
/// created in an op.
#[test]
fn the_checks_catch_what_they_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("src");
    copy_dir(&src(), &copy);
    let append = |rel: &str, text: &str| {
        let p = copy.join(rel);
        let mut s = std::fs::read_to_string(&p).unwrap();
        s.push_str(text);
        std::fs::write(p, s).unwrap();
    };
    append("weights/plan.rs", "\n#[allow(unused_imports)]\nuse crate::model::Dit;\n");
    append("ops/weight/mod.rs", "\n#[allow(unused_imports)]\nuse super::conv::Conv2d;\n");
    append("ops/norm/mod.rs", "\nfn t(g: &crate::gpu::Gpu) { let _ = g.device.create_texture(todo!()); }\n");
    append("bin/dit/gpu.rs", "\n#[allow(unused_imports)]\nuse crate::sample::SampleArgs;\n");
    let order = order_violations(&copy);
    println!("order: {order:?}");
    assert_eq!(order, ["weights/plan.rs: `weights` imports `model`, which is not below it"]);
    let found = circles(&copy);
    println!("circles: {found:?}");
    assert!(found.iter().any(|c| c.contains("weight -> conv")), "{found:?}");
    assert!(found.iter().any(|c| c.starts_with("bin/dit: gpu -> sample")), "the binary's gpu <-> sample: {found:?}");
    let created = wgpu_creations(&copy);
    assert_eq!(created, ["ops/norm/mod.rs: calls `create_texture` (only `gpu` creates wgpu objects)"]);
    let body = "    let _ = 0;\n".repeat(MAX_FUNCTION_LINES);
    append("util.rs", &format!("\nfn too_long() {{\n{body}}}\n"));
    let long = long_functions(&copy, MAX_FUNCTION_LINES);
    assert!(long.iter().any(|l| l.starts_with("util.rs::too_long: 82 lines")), "{long:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dst = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}
