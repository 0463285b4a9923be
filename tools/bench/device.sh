#!/usr/bin/env bash
# One prepared run on a lent GPU machine (no registry there: it gets the repository plus the carried
# target/release/dit, node_modules and www/lib/pkg). In about 8 minutes it writes JSON under $OUT (default ./device-out):
#   card.txt           the card (nvidia-smi), or the Vulkan adapter the CLI reports
#   native_forward     DiT-XL/2 guided step (batch 2) at 256 px, random fp16 weights: `dit bench`
#   torch              the same forward in PyTorch CUDA fp16 eager and `dit bench`, one run (tools/bench/vs_torch.py),
#                      where torch with CUDA is installed; otherwise a line saying it was skipped
#   dawn               the wasm build on Dawn through Vulkan (tools/bench/dawn.mjs): the demo model, the XL/2 forward,
#                      one image with 50 DDIM and one with 250 DDPM steps
#   native_image_50_ddim, native_image_250_ddpm   the same images natively (`dit bench --sample-steps`)
#   summary.json       the figures side by side with their ratios
# --smoke: tiny settings (S/2 at 32 px, 2 and 3 steps) to check the parts run, here on lavapipe (native) and SwiftShader
# (Dawn: set VK_ICD_FILENAMES for the whole script, or DAWN_VK_ICD_FILENAMES for the Dawn part alone).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT="${OUT:-device-out}"
mkdir -p "$OUT"
DIT="${DIT_BIN:-target/release/dit}"
# Each part's time limit: native parts and the Dawn part (which makes its random weights three times, in wasm).
preset=XL/2 res=256 repeat=10 ddim=50 ddpm=250 native_s=100 dawn_s=240 demo=
if [ "${1:-}" = --smoke ]; then
  # The demo model's part of the Dawn harness is left out: tests/e2e/dawn.test.mjs runs it.
  preset=S/2 res=32 repeat=1 ddim=2 ddpm=3 native_s=300 dawn_s=600 demo=--no-demo
fi
limit=$native_s
log() { echo "device: $*" | tee -a "$OUT/log.txt" >&2; }
# Runs a part with a time limit; its stdout (one JSON object) goes to $OUT/NAME.json, a failure is logged, not fatal.
part() {
  local name=$1
  shift
  local t0=$SECONDS
  if timeout "$limit" "$@" >"$OUT/$name.json" 2>"$OUT/$name.err"; then
    log "$name: done in $((SECONDS - t0)) s"
  else
    log "$name: failed (status $?, $((SECONDS - t0)) s): $(tail -n 2 "$OUT/$name.err" | tr '\n' ' ')"
    rm -f "$OUT/$name.json"
  fi
}

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$OUT/card.txt" 2>&1 || true
else
  echo "no nvidia-smi" >"$OUT/card.txt"
fi
log "card: $(cat "$OUT/card.txt")"
[ -x "$DIT" ] || { log "no CLI at $DIT (build it with cargo build --release and carry it)"; exit 1; }

part native_forward "$DIT" bench --preset "$preset" --random-weights --res "$res" --batch 2 --repeat "$repeat" \
  --no-baseline --json
if python3 -c 'import torch, diffusers; assert torch.cuda.is_available()' 2>/dev/null; then
  part torch env DIT_BIN="$DIT" python3 tools/bench/vs_torch.py --preset "$preset" --res "$res" --repeat "$repeat" \
    --device cuda --dtype float16 --json
else
  log "torch: skipped (no torch + diffusers with CUDA here)"
fi
part native_image_50_ddim "$DIT" bench --preset "$preset" --random-weights --res "$res" --repeat 1 --no-baseline \
  --sample-steps "$ddim" --sampler ddim --json
part native_image_250_ddpm "$DIT" bench --preset "$preset" --random-weights --res "$res" --repeat 1 --no-baseline \
  --sample-steps "$ddpm" --sampler ddpm --json
if [ -d node_modules/webgpu ] && [ -f www/lib/pkg/dit_wasm_bg.wasm ]; then
  limit=$dawn_s
  part dawn env ${DAWN_VK_ICD_FILENAMES:+VK_ICD_FILENAMES="$DAWN_VK_ICD_FILENAMES"} node tools/bench/dawn.mjs --json $demo \
    --steps "$ddim" --repeat "$repeat" --preset "$preset" --res "$res" --image-steps "$ddim:ddim,$ddpm:ddpm"
else
  log "dawn: skipped (carry node_modules and www/lib/pkg)"
fi

node - "$OUT" <<'EOF' >"$OUT/summary.json"
const fs = require("node:fs");
const out = process.argv[2];
const read = (n) => { try { return JSON.parse(fs.readFileSync(`${out}/${n}.json`, "utf8")); } catch { return null; } };
const nf = read("native_forward"), torch = read("torch"), dawn = read("dawn");
const i50 = read("native_image_50_ddim"), i250 = read("native_image_250_ddpm");
const ratio = (a, b) => (a && b ? a / b : null);
const s = {
  card: fs.readFileSync(`${out}/card.txt`, "utf8").trim(),
  native_adapter: nf?.adapter ?? null,
  native_ms_per_forward: nf?.ms_per_forward ?? null,
  torch: torch ?? "skipped",
  dawn_adapter: dawn?.adapter ?? null,
  dawn_ms_per_forward: dawn?.preset?.ms_per_forward ?? null,
  dawn_vs_native_forward: ratio(dawn?.preset?.ms_per_forward, nf?.ms_per_forward),
  native_image_seconds: { ddim: i50?.generate_one_image ?? null, ddpm: i250?.generate_one_image ?? null },
  dawn_image_seconds: dawn?.preset?.images ?? null,
  dawn_demo: dawn ? { ms_per_forward: dawn.ms_per_forward, ms_per_image: dawn.ms_per_image, output_finite: dawn.output_finite } : null,
};
console.log(JSON.stringify(s, null, 1));
EOF
log "summary: $OUT/summary.json"
cat "$OUT/summary.json"
