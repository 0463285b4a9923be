# shellcheck shell=bash
# Sourced by the scripts. Without GPU hardware (no /dev/dri render node, no /dev/nvidia0), run Vulkan on Mesa's
# lavapipe (CPU); a machine with a GPU keeps its own driver. A private runtime directory silences Mesa's warnings.
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
  if ! ls /dev/dri/renderD* /dev/nvidia0 >/dev/null 2>&1; then
    export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
  fi
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR:-/nonexistent}" ]; then
  XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/dit-wasm-xdg-$(id -u)"
  export XDG_RUNTIME_DIR
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
