#!/usr/bin/env bash
# The product: builds the wasm, the npm package and the page, then serves the page on http://127.0.0.1:5173
# (PORT overrides) with the embedded demo model. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-site.sh
port="${PORT:-5173}"
echo
echo "dit-wasm: open http://127.0.0.1:${port}/ in a browser with WebGPU (Ctrl-C stops the server)"
cd www/demo
exec npx vite preview --host 127.0.0.1 --port "$port" --strictPort
