#!/usr/bin/env bash
# Builds the plugins that ship with Portolan (Rust, Python, JavaScript, C)
# and, on request, the test fixtures, as WebAssembly components.
#
#   scripts/build-plugins.sh             plugins/*        -> target/plugins/NAME.wasm (+ NAME.toml sidecar)
#   scripts/build-plugins.sh --fixtures  also tests/fixtures/*, tests/polyglot/* -> target/fixtures/NAME.wasm
#                                        and every SDK template, sdk/LANG/templates/ROLE
#                                        -> target/fixtures/templates/LANG-ROLE.wasm
#
# A folder with Cargo.toml is a Rust plugin (a member of the folder's Cargo
# workspace); a folder with portolan-plugin.toml is built by
# scripts/build-guest.sh, which skips it when its sources are unchanged.
#
# Runs scripts/bootstrap.sh first, so it works on a fresh machine. Both guest
# workspaces share one target directory (target/guest) so std, rebuilt from
# source for wasm32-wasip2, is built once. Idempotent: unchanged outputs are
# not rewritten (the host watches the plugins folder), and a run with nothing
# to rebuild takes a few seconds. Changed outputs are replaced by rename, so a
# watcher never sees a half-written file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

fixtures=0
for arg in "$@"; do
  case "$arg" in
    --fixtures) fixtures=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-plugins: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

"$ROOT/scripts/bootstrap.sh"

# Started from cargo (a test harness, a build script) this script inherits the
# caller's toolchain choice and compiler settings; the guests need their own:
# the "debweb" toolchain, wasm32-wasip2 and the flags in each workspace's
# .cargo/config.toml.
unset RUSTUP_TOOLCHAIN RUSTC RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTDOC \
  RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET \
  CARGO_BUILD_TARGET_DIR CARGO_MAKEFLAGS
export CARGO_TARGET_DIR="$ROOT/target/guest"
ARTIFACTS="$CARGO_TARGET_DIR/wasm32-wasip2/release"

# First bytes of a component: "\0asm", then version 0x0d and layer 1
# (a core module has version 1, layer 0).
COMPONENT_HEADER="0061736d0d000100"

# Copies $1 to $2 unless $2 already has the same bytes; replaces by rename.
install_if_changed() {
  local src="$1" dst="$2"
  if cmp -s "$src" "$dst"; then
    return 1
  fi
  local tmp
  tmp="$(dirname "$dst")/.$(basename "$dst").tmp.$$"
  cp "$src" "$tmp"
  mv -f "$tmp" "$dst"
}

# Builds the workspace in $1 (relative to the root) and installs each member's
# component (and sidecar, if the member's folder has NAME.toml) into $2.
build_workspace() {
  local workspace="$1" out="$2"
  local started=$SECONDS
  echo "build-plugins: building $workspace (release, wasm32-wasip2)" >&2
  # `+debweb` as well as rust-toolchain.toml: an inherited RUSTUP_TOOLCHAIN
  # is unset above, but a caller's `rustup run` wrapper is not.
  (cd "$ROOT/$workspace" && cargo +debweb build --release)
  mkdir -p "$ROOT/$out"
  local manifest name artifact status sidecar
  for manifest in "$ROOT/$workspace"/*/Cargo.toml; do
    name="$(basename "$(dirname "$manifest")")"
    # cargo names a cdylib after the crate, with dashes as underscores.
    artifact="$ARTIFACTS/${name//-/_}.wasm"
    if [ ! -f "$artifact" ]; then
      echo "build-plugins: $workspace/$name produced no $artifact (is it a cdylib member of the workspace?)" >&2
      exit 1
    fi
    if [ "$(head -c 8 "$artifact" | od -An -tx1 | tr -d ' \n')" != "$COMPONENT_HEADER" ]; then
      echo "build-plugins: $artifact is not a component (core module?)" >&2
      exit 1
    fi
    status="unchanged"
    if install_if_changed "$artifact" "$ROOT/$out/$name.wasm"; then status="updated"; fi
    printf '  %-38s %8s bytes  %s\n' "$out/$name.wasm" "$(wc -c < "$ROOT/$out/$name.wasm" | tr -d ' ')" "$status"
    sidecar="$ROOT/$workspace/$name/$name.toml"
    if [ -f "$sidecar" ]; then
      status="unchanged"
      if install_if_changed "$sidecar" "$ROOT/$out/$name.toml"; then status="updated"; fi
      printf '  %-38s %8s        %s\n' "$out/$name.toml" "" "$status"
    fi
  done
  echo "build-plugins: $workspace done in $((SECONDS - started)) s" >&2
}

# Builds every folder of $1 that has a portolan-plugin.toml (Python,
# JavaScript or C) into $2, with its sidecar.
build_guests() {
  local parent="$1" out="$2" prefix="${3:-}"
  local started=$SECONDS manifest dir name sidecar status
  mkdir -p "$ROOT/$out"
  for manifest in "$ROOT/$parent"/*/portolan-plugin.toml; do
    [ -f "$manifest" ] || continue
    dir="$(dirname "$manifest")"
    name="$prefix$(basename "$dir")"
    "$ROOT/scripts/build-guest.sh" "$dir" "$ROOT/$out/$name.wasm"
    sidecar="$dir/$(basename "$dir").toml"
    if [ -f "$sidecar" ]; then
      status="unchanged"
      if install_if_changed "$sidecar" "$ROOT/$out/$name.toml"; then status="updated"; fi
      printf '  %-44s %9s        %s\n' "$out/$name.toml" "" "$status"
    fi
  done
  echo "build-plugins: $parent (Python, JavaScript, C) done in $((SECONDS - started)) s" >&2
}

build_workspace plugins target/plugins
build_guests plugins target/plugins
if [ "$fixtures" -eq 1 ]; then
  build_workspace tests/fixtures target/fixtures
  build_guests tests/polyglot target/fixtures
  # The SDK templates must build as they are; the e2e tests load them.
  for lang in python js c; do
    build_guests "sdk/$lang/templates" target/fixtures/templates "$lang-"
  done
fi
