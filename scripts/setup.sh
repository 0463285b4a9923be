#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian 12 machine, skipping what is already there:
#   - Debian packages: Mesa's lavapipe (Vulkan on the CPU) and its loader; with --browser Chromium + ChromeDriver
#     (browser tests); with --test also Firefox ESR (the same tests in Firefox) and shellcheck (the scripts' lint)
#   - the Rust wasm32 target and wasm-bindgen-cli of the version in Cargo.lock (--browser); with --test geckodriver
#     (built from crates.io: wasm-bindgen-test drives Firefox through it)
#   - the npm packages of the workspace, the package (www/lib) and the page (www/demo) (--browser)
# Safe to run repeatedly. Usage: scripts/setup.sh [--browser] [--test]
# Every probe of a tool tolerates its absence; a step that fails names itself and what to do (the ERR trap below).
set -euo pipefail
cd "$(dirname "$0")/.."

# The geckodriver that drives Firefox ESR for wasm-bindgen-test (Debian has no package of it).
GECKODRIVER_VERSION=0.37.1

want_browser=0
want_test=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --test) want_browser=1 want_test=1 ;;
    *) echo "setup: unknown argument '$arg' (usage: scripts/setup.sh [--browser] [--test])" >&2; exit 2 ;;
  esac
done

step="starting"
hint="run scripts/setup.sh again; if it fails the same way, run the step by hand to see its full output"
on_error() {
  local rc=$?
  echo "setup: FAILED (exit $rc) while $step" >&2
  echo "setup: what to do: $hint" >&2
  exit "$rc"
}
trap on_error ERR

# 0 when the Debian package is installed (held packages and several architectures too). A machine without dpkg-query
# (not Debian) reports every package missing.
deb_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null) || return 1
  grep -qx installed <<<"$status"
}

need=()
for pkg in mesa-vulkan-drivers libvulkan1; do
  deb_installed "$pkg" || need+=("$pkg")
done
if [ "$want_browser" = 1 ]; then
  deb_installed chromium || need+=(chromium)
  deb_installed chromium-driver || need+=(chromium-driver)
fi
if [ "$want_test" = 1 ]; then
  deb_installed firefox-esr || need+=(firefox-esr)
  deb_installed shellcheck || need+=(shellcheck)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  step="looking for apt-get"
  hint="this set-up is for Debian and its derivatives; elsewhere install the equivalents of: ${need[*]}"
  command -v apt-get >/dev/null
  sudo_cmd=()
  if [ "$(id -u)" != 0 ]; then
    step="getting root through sudo (apt-get needs root)"
    hint="run as root, or set up sudo for this user, or install these packages yourself: apt-get install ${need[*]}"
    command -v sudo >/dev/null
    sudo true
    sudo_cmd=(sudo)
  fi
  step="running apt-get update"
  hint="check that the Debian package mirrors are reachable (apt-get update), then run again"
  "${sudo_cmd[@]}" apt-get update -qq
  step="installing the Debian packages ${need[*]}"
  hint="run '${sudo_cmd[*]:+${sudo_cmd[*]} }apt-get install ${need[*]}' to see apt's full message"
  # Through env: sudo does not pass the caller's environment on.
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "$want_browser" = 1 ]; then
  # The page's build (Vite 8) needs Node 20.19 or newer.
  step="checking Node and npm (20.19 or newer)"
  node_version=$(node --version 2>/dev/null || echo "no node")
  hint="install Node 20.19 or newer (with npm), then run again; this machine has $node_version"
  command -v npm >/dev/null
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exitCode = a * 100 + b >= 2019 ? 0 : 1'

  step="looking for rustup and cargo"
  hint="install Rust with rustup (https://rustup.rs), then run again"
  command -v rustup >/dev/null
  command -v cargo >/dev/null

  step="adding the Rust target wasm32-unknown-unknown"
  hint="run 'rustup target add wasm32-unknown-unknown' to see its full message"
  targets=$(rustup target list --installed 2>/dev/null || true)
  if ! grep -qx wasm32-unknown-unknown <<<"$targets"; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi

  # wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock. cargo installs it into
  # ~/.cargo/bin (or CARGO_INSTALL_ROOT/bin), where the next run finds it; its build is kept in target/tools (or
  # CARGO_TARGET_DIR), where the set-up test finds it again. No --locked: its lockfile pins a crate version the
  # registry no longer has.
  step="reading the wasm-bindgen version from Cargo.lock"
  hint="Cargo.lock must list the wasm-bindgen crate; run 'cargo generate-lockfile' if it is missing"
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  [ -n "$want" ]
  have=""
  if command -v wasm-bindgen >/dev/null; then
    have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
  fi
  if [ "$have" != "$want" ]; then
    echo "setup: installing wasm-bindgen-cli $want (about three minutes, once)${have:+, replacing $have}"
    step="installing wasm-bindgen-cli $want (cargo install)"
    hint="run 'cargo install wasm-bindgen-cli --version $want' to see cargo's full message"
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/tools}" cargo install wasm-bindgen-cli --version "$want" --quiet
    hash -r
    step="checking the installed wasm-bindgen"
    bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
    found=$(command -v wasm-bindgen || echo none)
    hint="cargo installed it into $bin: put that folder on the PATH, ahead of any other wasm-bindgen (found: $found)"
    have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    [ "$have" = "$want" ]
  fi

  if [ "$want_test" = 1 ]; then
    step="installing geckodriver $GECKODRIVER_VERSION (cargo install)"
    hint="run 'cargo install geckodriver --version $GECKODRIVER_VERSION' to see cargo's full message"
    have=""
    if command -v geckodriver >/dev/null; then
      have=$(geckodriver --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true)
    fi
    if [ "$have" != "$GECKODRIVER_VERSION" ]; then
      echo "setup: installing geckodriver $GECKODRIVER_VERSION (a few minutes, once)${have:+, replacing $have}"
      CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/tools}" cargo install geckodriver --version "$GECKODRIVER_VERSION" --quiet
      hash -r
      step="checking the installed geckodriver"
      bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
      found=$(command -v geckodriver || echo none)
      hint="cargo installed it into $bin: put that folder on the PATH, ahead of any other geckodriver (found: $found)"
      have=$(geckodriver --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true)
      [ "$have" = "$GECKODRIVER_VERSION" ]
    fi
  fi

  # npm ci installs exactly the lockfile; it runs again whenever the lockfile is newer than what was installed.
  for dir in www/lib www/demo .; do
    installed="$dir/node_modules/.package-lock.json"
    if [ ! -f "$installed" ] || [ "$dir/package-lock.json" -nt "$installed" ]; then
      echo "setup: installing npm packages in $dir"
      step="installing the npm packages of $dir (npm ci)"
      hint="run '(cd $dir && npm ci)' to see npm's full message; the npm registry must be reachable"
      (cd "$dir" && npm ci --no-audit --no-fund --silent)
    fi
  done
fi
trap - ERR
