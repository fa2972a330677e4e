#!/usr/bin/env bash
# Installs everything Portolan's build needs on a Debian 12 machine of the kind
# described in TOOLCHAIN.md: non-interactive, idempotent, and a no-op (seconds)
# when everything is already there. Called by `make run` and `make test`.
#
# Guests are built with Debian's rustc-web (1.96, with an LLVM that has the
# WebAssembly backend) and std rebuilt from rust-web-src, because rustup here
# cannot download the wasm targets. rustup links that compiler as the
# toolchain "debweb", which plugins/rust-toolchain.toml names.
set -euo pipefail

APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc)
# The web UI's browser tests drive Debian's headless Chromium over WebDriver.
APT_PACKAGES+=(chromium chromium-driver fonts-dejavu-core)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# rust-lld must be on PATH for rustc-web's wasm targets; lld-22 ships it under
# the LLVM directory only on some layouts.
if ! command -v rust-lld >/dev/null 2>&1; then
  echo "bootstrap: rust-lld is missing after installing lld-22" >&2
  exit 1
fi

if ! rustup toolchain list | grep -q '^debweb'; then
  echo "bootstrap: linking Debian's rustc-web as rustup toolchain 'debweb'" >&2
  rustup toolchain link debweb /usr
fi

# The host workspace itself builds with rustup's stable toolchain.
command -v cargo >/dev/null || { echo "bootstrap: cargo (rustup stable) is required" >&2; exit 1; }
