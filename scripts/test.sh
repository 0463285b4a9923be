#!/usr/bin/env bash
# Runs every test: native kernel, model and CLI tests on whatever Vulkan adapter exists (lavapipe without a GPU).
# Installs what it needs first (scripts/setup.sh). Usage: npm test   (or scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

# lavapipe has shader-f16, so on it both fp16 weight paths must be tested.
if [ "${VK_ICD_FILENAMES:-}" = /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
  export DIT_REQUIRE_F16=1
fi

echo "== native tests (cargo test)"
cargo test --locked
