#!/usr/bin/env bash
# Builds one plugin written in Python, JavaScript or C into a component.
#
#   scripts/build-guest.sh DIR OUT.wasm
#
# DIR holds `portolan-plugin.toml` (`language = "python" | "javascript" | "c"`
# and `world = "catalog-source" | "action" | "scaffold-generator" |
# "scorecard-check"`) and the sources: `app.py` (Python), `app.js`
# (JavaScript) or `*.c` (C). The language's SDK (sdk/LANG) comes with it and
# the bindings are generated on every build (nothing generated is committed)
# from the current contract (wit/, 0.4.0). A check's `evaluate-rules` is
# answered rule by rule with its `evaluate` unless the plugin has its own:
# in Python by the SDK's `Plugin` base class, in JavaScript by an entry
# module this script writes around `app.js`, in C by sdk/c/portolan_rules.c
# (a weak definition). Expects the toolchains that scripts/bootstrap.sh
# installs.
#
# Incremental: the output's `.stamp` file holds a hash of everything the build
# reads (the folder, the SDK, the WIT, the tool versions, this script); when it matches,
# nothing is rebuilt. The output is replaced by rename.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/tools"
COMPONENTIZE_PY="$TOOLS/venv/bin/componentize-py"
NODE_BIN="$ROOT/tools/node_modules/.bin"
WIT_BINDGEN="$TOOLS/bin/wit-bindgen"
# Debian's rustc-web ships wasm-component-ld: wasm-ld plus the WASI adapter,
# so a C core module becomes a component without a wasm-tools install.
COMPONENT_LD="/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld"
# The contract the SDKs build against: the current one.
WIT="$ROOT/wit"

if [ $# -ne 2 ]; then
  sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
DIR="$(cd "$1" && pwd)"
OUT="$2"
mkdir -p "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
NAME="$(basename "$OUT" .wasm)"

manifest="$DIR/portolan-plugin.toml"
[ -f "$manifest" ] || { echo "build-guest: $DIR has no portolan-plugin.toml" >&2; exit 1; }
field() { sed -n "s/^$1[[:space:]]*=[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" "$manifest" | head -1; }
language="$(field language)"
world="$(field world)"
case "$world" in
  catalog-source | action | scaffold-generator | scorecard-check) ;;
  *) echo "build-guest: $manifest: unknown world '$world'" >&2; exit 1 ;;
esac
case "$language" in
  python) sdk="$ROOT/sdk/python"; tool_version="$("$COMPONENTIZE_PY" --version)" ;;
  javascript) sdk="$ROOT/sdk/js"; tool_version="$("$NODE_BIN/componentize-js" --version)" ;;
  c) sdk="$ROOT/sdk/c"; tool_version="$("$WIT_BINDGEN" --version) $(clang --version | head -1)" ;;
  *) echo "build-guest: $manifest: unknown language '$language'" >&2; exit 1 ;;
esac

# Everything the output depends on, hashed in a stable order.
stamp="$({
  echo "$language $world $tool_version"
  sha256sum < "${BASH_SOURCE[0]}"
  (cd "$DIR" && find . -type f ! -path './target/*' ! -path './node_modules/*' ! -name '*.wasm' \
     ! -path '*/__pycache__/*' | LC_ALL=C sort | xargs -d '\n' sha256sum)
  (cd "$sdk" && find . -type f ! -path './templates/*' ! -path '*/__pycache__/*' ! -path './node_modules/*' \
     | LC_ALL=C sort | xargs -d '\n' sha256sum)
  (cd "$WIT" && find . -maxdepth 2 -name '*.wit' | LC_ALL=C sort | xargs -d '\n' sha256sum)
} | sha256sum | cut -c1-64)"
if [ -f "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$stamp" ]; then
  printf '  %-44s %9s bytes  unchanged\n' "${OUT#"$ROOT"/}" "$(wc -c < "$OUT" | tr -d ' ')"
  exit 0
fi

started=$SECONDS
work="$ROOT/target/guest-build/$NAME"
rm -rf "$work"
mkdir -p "$work"
tmp="$(dirname "$OUT")/.$NAME.wasm.tmp.$$"
trap 'rm -f "$tmp"' EXIT

case "$language" in
  python)
    # Typed bindings for editors and type checkers; componentize-py makes
    # its own copy inside the component.
    "$COMPONENTIZE_PY" -d "$WIT" -w "$world" bindings "$work/bindings" >/dev/null
    # Staged copies: componentize-py runs the code while it builds and
    # would leave __pycache__ folders in the sources.
    mkdir -p "$work/src" "$work/sdk"
    (cd "$DIR" && find . -name '*.py' ! -path '*/__pycache__/*' -exec cp --parents {} "$work/src/" \;)
    cp -r "$sdk/portolan_sdk" "$work/sdk/"
    "$COMPONENTIZE_PY" -d "$WIT" -w "$world" componentize \
      -p "$work/src" -p "$work/sdk" app -o "$tmp" >"$work/build.log" 2>&1 \
      || { cat "$work/build.log" >&2; exit 1; }
    ;;
  javascript)
    # componentize-js resolves relative imports from the entry file's folder:
    # stage the plugin's files with the SDK's helper module beside them.
    mkdir -p "$work/src"
    (cd "$DIR" && find . -name '*.js' ! -path './node_modules/*' -exec cp --parents {} "$work/src/" \;)
    cp "$sdk/portolan.js" "$work/src/portolan.js"
    entry="$work/src/app.js"
    if [ "$world" = scorecard-check ]; then
      # The check as the plugin exports it, with `evaluateRules` added when
      # it has none (sdk/js/portolan.js, `check.withEvaluateRules`).
      entry="$work/src/portolan-entry.js"
      cat > "$entry" <<'JS'
// Written by scripts/build-guest.sh around the plugin's app.js.
import { check as plugin } from './app.js';
import { check as helpers } from './portolan.js';

export const check = helpers.withEvaluateRules(plugin);
JS
    fi
    "$NODE_BIN/jco" types "$WIT" --world-name "$world" -o "$work/types" >/dev/null 2>&1 || true
    "$NODE_BIN/componentize-js" --wit "$WIT" --world-name "$world" \
      -o "$tmp" "$entry" >"$work/build.log" 2>&1 \
      || { cat "$work/build.log" >&2; exit 1; }
    ;;
  c)
    "$WIT_BINDGEN" c "$WIT" --world "$world" --out-dir "$work/gen" >/dev/null 2>&1
    world_c="${world//-/_}"
    # Each generated and plugin source compiled for wasm32-wasi (WASI
    # preview 1 libc from Debian), then linked as a reactor component.
    objs=()
    srcs=("$DIR"/*.c "$work/gen/$world_c.c")
    # A check's `evaluate-rules`, rule by rule, unless the plugin has its own.
    [ "$world" = scorecard-check ] && srcs+=("$sdk/portolan_rules.c")
    for src in "${srcs[@]}"; do
      obj="$work/$(basename "$src" .c).o"
      clang --target=wasm32-wasi -O2 -Wall -Werror -Wno-unused-function \
        -DPORTOLAN_WORLD="$world_c" -DPORTOLAN_WORLD_HEADER="\"$world_c.h\"" \
        -I "$work/gen" -I "$sdk" -c "$src" -o "$obj"
      objs+=("$obj")
    done
    "$COMPONENT_LD" --wasi-adapter reactor -o "$tmp" \
      -L /usr/lib/wasm32-wasi /usr/lib/wasm32-wasi/crt1-reactor.o \
      "${objs[@]}" "$work/gen/${world_c}_component_type.o" \
      -lc "$(clang --target=wasm32-wasi -print-libgcc-file-name)" \
      --no-entry --export-dynamic >"$work/build.log" 2>&1 \
      || { cat "$work/build.log" >&2; exit 1; }
    ;;
esac

mv -f "$tmp" "$OUT"
echo "$stamp" > "$OUT.stamp"
printf '  %-44s %9s bytes  built in %s s\n' "${OUT#"$ROOT"/}" "$(wc -c < "$OUT" | tr -d ' ')" "$((SECONDS - started))"
