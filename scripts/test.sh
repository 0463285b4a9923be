#!/usr/bin/env bash
# Runs every test. Installs what it needs first (scripts/setup.sh --test: lavapipe, Chromium, Firefox ESR, shellcheck,
# the wasm target, wasm-bindgen-cli, geckodriver, npm packages). Usage: npm test   (or scripts/test.sh)
#   1. native: kernel, model, sampler, converter and CLI tests on the Vulkan adapter (lavapipe without a GPU)
#   2. browser: the same kernels and models in headless Chromium's WebGPU and in headless Firefox's (wasm-bindgen-test)
#   3. end to end: the built page driven by Playwright (playwright-core + the system Chromium) and by puppeteer-core
#      (Firefox, over WebDriver BiDi), and the scripts themselves: shellcheck, and scripts/setup.sh run as a fresh
#      machine sees it
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
. scripts/env.sh

# lavapipe has shader-f16, so on it both fp16 weight paths must be tested.
if [ "${VK_ICD_FILENAMES:-}" = /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
  export DIT_REQUIRE_F16=1
fi

echo "== 1/3 native tests (cargo test)"
cargo test --locked
# The parsers under random and mutated inputs for a fixed time (tests/fuzz.rs), executions printed per parser.
DIT_FUZZ_SECONDS="${DIT_FUZZ_SECONDS:-60}" cargo test --locked --test fuzz fuzz_for_a_fixed_time -- --ignored --nocapture

echo "== 2/3 browser tests (wasm-bindgen-test in headless Chromium, then in headless Firefox)"
# The whole suite compiles for wasm (native-only test files are gated off there); tests/web.rs is what runs, in each
# browser with the options of webdriver.json (Chromium's flags, Firefox's binary and WebGPU prefs). The runner takes
# GECKODRIVER before CHROMEDRIVER, so the Chromium run goes without it.
cargo test --locked --target wasm32-unknown-unknown --no-run
env -u GECKODRIVER CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=900 \
  cargo test --locked --target wasm32-unknown-unknown --test web -- --nocapture
geckodriver=$(command -v geckodriver)
GECKODRIVER="$geckodriver" WASM_BINDGEN_TEST_TIMEOUT=900 \
  cargo test --locked --target wasm32-unknown-unknown --test web -- --nocapture

echo "== 3/3 end-to-end tests (Playwright and Puppeteer on the built page, in Chromium and Firefox; the scripts)"
scripts/build-site.sh
node --test --test-concurrency=1 tests/e2e/ tests/scripts/
