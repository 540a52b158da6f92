#!/usr/bin/env bash
# The README's quick start, run literally: `make serve`, then the curl line it prints.
# (A scratch data dir and a free port via BINDERY_* variables, so it never touches ./bindery-data.)
set -euo pipefail
cd "$(dirname "$0")/../.."
# Build first, untimed: on a clean checkout make serve would spend minutes compiling.
swift build --product bindery
scratch=$(mktemp -d)
trap 'kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT
BINDERY_DATA_DIR="$scratch/data" BINDERY_LISTEN=127.0.0.1:0 setsid make -s serve > "$scratch/out" 2> "$scratch/err" &
serve_pid=$!
for _ in $(seq 1 600); do
  grep -q '^  curl ' "$scratch/out" && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$scratch/err"; echo "quick start: make serve exited"; exit 1; }
  sleep 0.1
done
line=$(grep -m1 '^  curl ' "$scratch/out") || { cat "$scratch/err"; echo "quick start: no curl line printed"; exit 1; }
echo "quick start: running the printed line:$line"
answer=$(eval "$line -s --max-time 10")
echo "$answer" | grep -q '"driver":"simulated"' || { echo "quick start: unexpected answer: $answer"; exit 1; }
echo "quick start: make serve answered the curl line (kernel driver simulated)"
kill -TERM -- "-$serve_pid" 2>/dev/null || kill "$serve_pid"
