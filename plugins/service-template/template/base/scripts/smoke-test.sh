#!/bin/sh
# Checks that a running instance answers GET /health with "ok", retrying for
# up to 30 seconds while it starts. Usage: scripts/smoke-test.sh [BASE_URL]
set -eu
url="${1:-http://localhost:${PORT:-8080}}/health"
i=0
while [ "$i" -lt 30 ]; do
  if body="$(curl -fsS "$url" 2>/dev/null)" && [ "$body" = "ok" ]; then
    echo "smoke test passed: $url"
    exit 0
  fi
  i=$((i + 1))
  sleep 1
done
echo "smoke test failed: $url did not answer ok" >&2
exit 1
