#!/usr/bin/env bash
# Converts a run of tools/train_flowmap_demo.py into the embedded flow-map demo, models/demo/flowmap (it decodes with
# the demo VAE, models/demo/vae), and renders the README's grid of its one-step samples.
# Usage: scripts/build_flowmap_demo.sh /tmp/flowmap-train
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:?usage: scripts/build_flowmap_demo.sh TRAIN_DIR}"
. scripts/env.sh
cargo build --release --locked --bin dit
dit=./target/release/dit
heads=$(python3 -c "import json; a=json.load(open('$run/log.json'))['args']; print(a['width'] // 64)")
rm -rf models/demo/flowmap
$dit convert "$run/flowmap-demo.pt" --out models/demo/flowmap --arch meanflow --heads "$heads" \
  --class-names "$run/classes.json" --shard-mib 4
cp "$run/log.json" models/demo/flowmap-training-log.json
# The README's grid: one row per class, 8 images each, one step.
classes=()
for c in $(seq 0 9); do for _ in $(seq 1 8); do classes+=(--class "$c"); done; done
$dit sample --model models/demo/flowmap --vae models/demo/vae "${classes[@]}" --steps 1 --seed 0 --cols 8 --quiet \
  --out docs/demo-flowmap-samples.png
du -sh models/demo/flowmap
