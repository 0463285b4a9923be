#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian 12 machine, skipping what is already there:
#   - Debian packages: Mesa's lavapipe (Vulkan on the CPU) and its loader, Chromium + ChromeDriver (browser tests)
#   - the Rust wasm32 target
# Safe to run repeatedly. Usage: scripts/setup.sh [--browser]
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

need=()
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need+=(mesa-vulkan-drivers)
[ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ] || need+=(libvulkan1)
if [ "$want_browser" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "$want_browser" = 1 ]; then
  if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  # wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock. It is installed into
  # ~/.cargo/bin, where the next run (and CI's next run) finds it. No --locked: its lockfile pins a crate version
  # the registry no longer has.
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
  if [ "$have" != "$want" ]; then
    echo "setup: installing wasm-bindgen-cli $want (about two minutes, once)"
    cargo install wasm-bindgen-cli --version "$want" --quiet
  fi
  if [ ! -d www/lib/node_modules ] || [ ! -d www/demo/node_modules ] || [ ! -d node_modules ]; then
    echo "setup: installing npm packages"
    (cd www/lib && npm install --no-audit --no-fund --silent)
    (cd www/demo && npm install --no-audit --no-fund --silent)
    npm install --no-audit --no-fund --silent
  fi
fi
