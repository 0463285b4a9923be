#!/usr/bin/env bash
# Builds the `dit` command-line tool (release) and shows the GPU adapter it runs on.
# The browser page is not built yet; this runs the native product.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build --release --locked --bin dit
echo "== adapter"
./target/release/dit gpu
echo "== built ./target/release/dit; try:"
echo "   ./target/release/dit bench --preset S/2 --res 256 --random-weights"
