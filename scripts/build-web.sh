#!/usr/bin/env bash
# Builds the wasm module and the npm package `dit-wasm` (www/lib): release wasm32 build, wasm-bindgen (web target)
# into www/lib/pkg, then the TypeScript into www/lib/dist. Usage: scripts/build-web.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
profile=release
flag=--release
[ "${1:-}" = "--dev" ] && profile=debug && flag=
cargo build $flag --locked --lib --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir www/lib/pkg "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$profile/dit_wasm.wasm"
(cd www/lib && npm run build --silent)
echo "built www/lib (wasm $(du -h www/lib/pkg/dit_wasm_bg.wasm | cut -f1))"
