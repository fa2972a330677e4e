#!/usr/bin/env bash
# `make run`: builds everything (toolchains included) and runs the portal with
# the shipped plugins on the embedded SQLite database in ./.portolan.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/build-plugins.sh
cargo build --release --locked -p portolan

# The templates' sidecars publish new projects here (see their [scaffold]).
mkdir -p "$ROOT/target/projects"

DATA_DIR="${PORTOLAN_DATA_DIR:-$ROOT/.portolan}"
mkdir -p "$DATA_DIR"
if [ ! -s "$DATA_DIR/admin-token" ]; then
  (umask 077; target/release/portolan token create --role admin \
     --description "created by make run" --data-dir "$DATA_DIR" > "$DATA_DIR/admin-token")
fi
cat <<EOT

  Portolan is starting on http://${PORTOLAN_LISTEN:-127.0.0.1:7700}
  Web UI:         http://${PORTOLAN_LISTEN:-127.0.0.1:7700}/ (sign in with the admin token below)
  Plugins folder: $ROOT/target/plugins (drop a .wasm here to install it)
  Scorecards:     $ROOT/examples/scorecards (YAML files, applied when they change)
  New projects:   $ROOT/target/projects (where the templates publish)
  Admin token:    $(cat "$DATA_DIR/admin-token")   (saved in $DATA_DIR/admin-token)

  Try:  curl -H "Authorization: Bearer \$(cat $DATA_DIR/admin-token)" http://${PORTOLAN_LISTEN:-127.0.0.1:7700}/api/v1/plugins

EOT
exec target/release/portolan serve \
  --data-dir "$DATA_DIR" \
  --plugins-dir "$ROOT/target/plugins" \
  --scorecards-dir "${PORTOLAN_SCORECARDS_DIR:-$ROOT/examples/scorecards}" \
  --listen "${PORTOLAN_LISTEN:-127.0.0.1:7700}"
