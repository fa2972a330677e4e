#!/usr/bin/env bash
# `make test`: the whole suite, as CI runs it. Installs the guest toolchains if
# needed, builds the plugins and test fixtures from source (Rust, Python,
# JavaScript and C, and every SDK template; unchanged ones are skipped by
# content hash), checks formatting
# and lints, then runs every test (the store and API suites run against both
# SQLite and the PostgreSQL server at 127.0.0.1:5432).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n== %s\n' "$*"; }

step "guest toolchain and plugins"
scripts/build-plugins.sh --fixtures

step "PostgreSQL"
export PORTOLAN_TEST_POSTGRES_URL="${PORTOLAN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "host tests"
cargo test --workspace --locked

step "guest unit tests (SDK and plugins, run natively)"
# The guest workspaces pin the debweb toolchain for wasm; their pure-Rust unit
# tests run on the host target with the stable toolchain.
unset RUSTUP_TOOLCHAIN
( cd sdk/rust && CARGO_TARGET_DIR="$ROOT/target/guest-native" cargo +stable test --locked --target x86_64-unknown-linux-gnu )
( cd plugins && CARGO_TARGET_DIR="$ROOT/target/guest-native" cargo +stable test --locked --target x86_64-unknown-linux-gnu )
# Of the fixtures, only bulk-source has unit tests (the others use wasm32-only
# intrinsics on purpose and do not build natively).
( cd tests/fixtures && CARGO_TARGET_DIR="$ROOT/target/guest-native" cargo +stable test --locked --target x86_64-unknown-linux-gnu -p bulk-source )
