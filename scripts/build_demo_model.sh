#!/usr/bin/env bash
# Converts a training run of tools/train_demo.py into the embedded demo model (models/demo/{dit,vae}) and renders
# the README's sample grid. Usage: scripts/build_demo_model.sh /tmp/demo-train
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:?usage: scripts/build_demo_model.sh TRAIN_DIR}"
. scripts/env.sh
cargo build --release --locked --bin dit
dit=./target/release/dit
heads=$(python3 -c "import json; a=json.load(open('$run/log.json'))['args']; print(a['width'] // 64)")
rm -rf models/demo
$dit convert "$run/dit.safetensors" --out models/demo/dit --heads "$heads" --input-size 8 \
  --class-names "$run/classes.json" --shard-mib 4
$dit convert "$run/vae/diffusion_pytorch_model.safetensors" --out models/demo/vae --shard-mib 4
cp "$run/log.json" models/demo/training-log.json
# The README's grid: one row per class, 8 images each (DPM-Solver++ 20 steps, guidance 4).
classes=()
for c in $(seq 0 9); do for _ in $(seq 1 8); do classes+=(--class "$c"); done; done
$dit sample --model models/demo/dit --vae models/demo/vae "${classes[@]}" --steps 20 --sampler dpmpp2m --cfg 4 \
  --seed 0 --cols 8 --quiet --out docs/demo-samples.png
du -sh models/demo
