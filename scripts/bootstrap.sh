#!/usr/bin/env bash
# Installs everything Portolan's build needs on a Debian 12 machine of the kind
# described in TOOLCHAIN.md: non-interactive, idempotent, and a no-op (seconds)
# when everything is already there. Called by `make run` and `make test`.
#
# Guests are built with Debian's rustc-web (1.96, with an LLVM that has the
# WebAssembly backend) and std rebuilt from rust-web-src, because rustup here
# cannot download the wasm targets. rustup links that compiler as the
# toolchain "debweb", which plugins/rust-toolchain.toml names.
#
# Plugins in other languages (scripts/build-guest.sh) need, all pinned and
# installed under target/tools/ or tools/node_modules/ (never system-wide):
# - C: clang, lld, wasi-libc and the wasm32 compiler-rt from Debian, plus
#   wit-bindgen-cli (cargo install); rustc-web's wasm-component-ld turns the
#   core module into a component, so wasm-tools is not needed;
# - Python: componentize-py in a venv;
# - JavaScript: componentize-js and jco from tools/package-lock.json (npm ci).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/tools"
COMPONENTIZE_PY_VERSION="0.25.1"
WIT_BINDGEN_VERSION="0.51.0"

APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc clang lld libclang-rt-dev-wasm32)
# The web UI's browser tests drive Debian's headless Chromium over WebDriver.
APT_PACKAGES+=(chromium chromium-driver fonts-dejavu-core)
# Only when the command is missing (these machines may have python3 and node
# from elsewhere): command:package.
for pair in "python3:python3-venv" "npm:npm"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || APT_PACKAGES+=("${pair#*:}")
done

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

# --- Guest toolchains for Python, JavaScript and C plugins -------------------

WASM_COMPONENT_LD=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
[ -x "$WASM_COMPONENT_LD" ] || { echo "bootstrap: $WASM_COMPONENT_LD is missing (package rustc-web)" >&2; exit 1; }

mkdir -p "$TOOLS"
if [ "$("$TOOLS/venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  echo "bootstrap: installing componentize-py $COMPONENTIZE_PY_VERSION in $TOOLS/venv" >&2
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# npm ci reinstalls from scratch; skip it while the installed tree matches the
# lock file (npm writes a copy of it into node_modules).
if ! cmp -s "$ROOT/tools/package-lock.json" "$ROOT/tools/node_modules/.package-lock.json.installed" 2>/dev/null; then
  echo "bootstrap: installing the JavaScript guest toolchain (npm ci in tools/)" >&2
  (cd "$ROOT/tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$ROOT/tools/package-lock.json" "$ROOT/tools/node_modules/.package-lock.json.installed"
fi

if ! "$TOOLS/bin/wit-bindgen" --version 2>/dev/null | grep -q " $WIT_BINDGEN_VERSION"; then
  # Only the C generator: the other languages double the build time.
  echo "bootstrap: installing wit-bindgen-cli $WIT_BINDGEN_VERSION (a few minutes, once)" >&2
  # The host's stable toolchain, whatever a caller chose.
  env -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_BUILD_TARGET \
    cargo +stable install --locked --quiet --root "$TOOLS" wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" \
      --no-default-features --features c
fi
