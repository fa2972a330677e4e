#!/usr/bin/env bash
# Creates a new plugin project from the SDK template of a language and role.
#
#   scripts/new-plugin.sh --language python|javascript|c --role ROLE NAME [--dir PARENT]
#
# ROLE is catalog-source, action, scaffold-generator or scorecard-check.
# Writes PARENT/NAME (default PARENT: the current folder): the template of
# sdk/LANG/templates/ROLE with NAME filled in, a commented sidecar NAME.toml
# and a README with the build and install steps. Build it with
# scripts/build-guest.sh PARENT/NAME OUT.wasm. (Rust plugins come from the
# portal's `plugin-template` scaffolder; see README.md.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

language="" role="" name="" parent="."
while [ $# -gt 0 ]; do
  case "$1" in
    --language) language="${2:-}"; shift 2 ;;
    --role) role="${2:-}"; shift 2 ;;
    --dir) parent="${2:-}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "new-plugin: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) [ -z "$name" ] || { echo "new-plugin: one NAME only" >&2; exit 2; }; name="$1"; shift ;;
  esac
done
case "$language" in
  python) sdk=python ;;
  javascript | js) sdk=js; language=javascript ;;
  c) sdk=c ;;
  rust) echo "new-plugin: Rust plugins come from the plugin-template scaffolder (README.md, 'Plugins in any language')" >&2; exit 2 ;;
  *) echo "new-plugin: --language must be python, javascript or c" >&2; usage >&2; exit 2 ;;
esac
case "$role" in
  catalog-source | action | scaffold-generator | scorecard-check) ;;
  *) echo "new-plugin: --role must be catalog-source, action, scaffold-generator or scorecard-check" >&2; exit 2 ;;
esac
if ! [[ "$name" =~ ^[a-z][a-z0-9-]{0,62}$ ]]; then
  echo "new-plugin: NAME must be lowercase letters, digits and dashes, starting with a letter (it becomes the plugin id)" >&2
  exit 2
fi
dest="$parent/$name"
[ ! -e "$dest" ] || { echo "new-plugin: $dest already exists" >&2; exit 1; }

template="$ROOT/sdk/$sdk/templates/$role"
mkdir -p "$dest"
for f in "$template"/*; do
  sed "s/my-plugin/$name/g" "$f" > "$dest/$(basename "$f")"
done

case "$role" in
  catalog-source) grants='# [[dirs]]                    # a directory the source reads, read-only
# host = "/srv/export"
# guest = "/data"
#
# [schedule]
# every = "15m"' ;;
  action) grants='# [http]
# allow = ["automation.example.com"]   # the only hosts fetch/wasi:http may reach
#
# [action]
# required_role = "member"' ;;
  *) grants='# [settings]
# key = "value"' ;;
esac
cat > "$dest/$name.toml" <<EOF
# Sidecar of $name: what the operator grants it. Every key is optional;
# put this file next to $name.wasm in the portal's plugins folder.

[limits]
timeout_ms = 10000
memory_mb = 128        # $language plugins carry their runtime: give them room

$grants
EOF

cat > "$dest/README.md" <<EOF
# $name

A Portolan **$role** plugin in $language, made from
\`sdk/$sdk/templates/$role\` (the guide is \`sdk/$sdk/README.md\`).

Build (from the Portolan checkout; the first build installs the toolchain):

    scripts/bootstrap.sh
    scripts/build-guest.sh $dest $name.wasm

Install: copy \`$name.wasm\` and \`$name.toml\` into the portal's plugins
folder; the running portal loads it within a second:

    curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:7700/api/v1/plugins/$name
EOF
echo "new-plugin: created $dest ($language $role)" >&2
