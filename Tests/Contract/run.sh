#!/usr/bin/env bash
# Contract and TLS checks against a live `bindery serve` (QUALITY.md,
# "Reliability and security checks"):
#
#   1. schemathesis, every phase (examples, coverage, fuzzing, stateful) and
#      every check, against openapi.yaml over mutual TLS with the admin
#      certificate of a fresh development PKI, at least MIN_CASES test cases;
#   2. sslyze against the same listener, judged by Mozilla's "intermediate"
#      profile; the development CA is given to sslyze as a trust store, so
#      the only finding set aside is that public trust stores do not know it;
#   3. the listener refuses a client with no certificate, with an expired
#      one, and with one from another CA.
#
# Usage: Tests/Contract/run.sh            (from anywhere; works in the repo root)
# Env:   BINDERY       binary to serve (default .build/debug/bindery)
#        VENV          Python venv with requirements.txt (default .build/venv;
#                      created or updated when requirements.txt changed)
#        REPORT_DIR    raw outputs (default .build/contract)
#        MAX_EXAMPLES  schemathesis --max-examples per operation (default 320)
#        MIN_CASES     fail if fewer test cases ran (default 5000)
#        SEED          schemathesis seed (default fixed, for reproducible runs)
#        SPEC          the contract to test against (default openapi.yaml; a
#                      binary older than the checkout serves its own at
#                      /v1/openapi.yaml: SPEC=served tests against that)
# Exit status: 0 when everything passed, 1 when anything failed.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=Tests/Contract
BINDERY=${BINDERY:-.build/debug/bindery}
VENV=${VENV:-.build/venv}
REPORT_DIR=${REPORT_DIR:-.build/contract}
MAX_EXAMPLES=${MAX_EXAMPLES:-320}
MIN_CASES=${MIN_CASES:-5000}
SEED=${SEED:-20261203}
SPEC=${SPEC:-openapi.yaml}

say() { printf 'contract: %s\n' "$*" >&2; }

[ -x "$BINDERY" ] || { say "no executable at $BINDERY (set BINDERY)"; exit 1; }
command -v curl >/dev/null || { say "curl is missing (make deps)"; exit 1; }

# --- the venv -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! cmp -s "$HERE/requirements.txt" "$VENV/.contract-requirements.txt"; then
  say "installing $HERE/requirements.txt into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$VENV/.contract-requirements.txt"
fi
PY="$VENV/bin/python"

rm -rf "$REPORT_DIR"
mkdir -p "$REPORT_DIR"
REPORT_DIR=$(cd "$REPORT_DIR" && pwd)

# --- the server ---------------------------------------------------------------
DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bindery-contract.XXXXXX")
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    # SIGTERM drains; give it a bounded number of checks, then SIGKILL.
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PKI=$DATA_DIR/pki
CURL=(curl -sS --max-time 10 --cacert "$PKI/ca.pem" --cert "$PKI/admin.pem" --key "$PKI/admin-key.pem")

start_server() {
  PORT=$(free_port)
  BASE=https://127.0.0.1:$PORT
  "$BINDERY" serve --data-dir "$DATA_DIR" --listen "127.0.0.1:$PORT" --kernel simulated \
    >"$REPORT_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  # Wait for /healthz over mTLS (bounded: 600 polls), or for the server to die.
  for _ in $(seq 600); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      return 1
    fi
    if [ -f "$PKI/admin-key.pem" ] && "${CURL[@]}" -f -o /dev/null "$BASE/healthz" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  say "bindery did not answer /healthz; server log:"; cat "$REPORT_DIR/server.log" >&2
  exit 1
}
# A port taken between free_port and the bind makes the server exit: try again.
started=false
for _ in 1 2 3; do
  if start_server; then started=true; break; fi
  say "bindery exited at start; retrying on another port"
done
$started || { say "bindery would not start; server log:"; cat "$REPORT_DIR/server.log" >&2; exit 1; }
say "$BINDERY serving $BASE, data in $DATA_DIR"

# --- seed data ----------------------------------------------------------------
# Two VMs with guest memory at 0, each with a device assigned and a binding on
# it, so list responses hand the fuzzer real VM and binding ids from the start
# (the stateful phase makes its own through the links in links.yaml).
api() { # METHOD PATH [BODY] -> prints the body, fails on a non-2xx answer
  local method=$1 path=$2 body=${3:-}
  if [ -n "$body" ]; then
    "${CURL[@]}" -f -X "$method" -H 'Content-Type: application/json' --data-binary "$body" "$BASE$path"
  else
    "${CURL[@]}" -f -X "$method" "$BASE$path"
  fi
}
json_field() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
for seed in 1 2; do
  device=$([ "$seed" = 1 ] && echo 0000:3b:00.0 || echo 0000:3c:00.0)
  vm=$(api POST /v1/vms "{\"name\":\"seed-$seed\",\"labels\":{\"seed\":\"$seed\"},\"memory\":[{\"guestAddress\":\"0x0\",\"size\":1073741824}]}" | json_field id)
  api PUT "/v1/vms/$vm/devices/$device" '{"managed":false}' >/dev/null
  api POST /v1/bindings "{\"vm\":\"$vm\",\"device\":\"$device\",\"type\":\"guest-page-table\",\"guestPasid\":$seed,\"format\":\"intel-vtd\",\"version\":1,\"pageTable\":{\"address\":\"0x1000\",\"addressWidth\":48}}" >/dev/null
done

# --- schemathesis -------------------------------------------------------------
if [ "$SPEC" = served ]; then
  SPEC=$REPORT_DIR/openapi-served.yaml
  "${CURL[@]}" -f -o "$SPEC" "$BASE/v1/openapi.yaml"
fi
say "schemathesis: $SPEC, all phases, all checks, --max-examples $MAX_EXAMPLES, seed $SEED"
st_rc=0
"$VENV/bin/st" --config-file "$HERE/schemathesis.toml" run "$SPEC" \
  --url "$BASE" \
  --request-cert "$PKI/admin.pem" --request-cert-key "$PKI/admin-key.pem" --tls-verify "$PKI/ca.pem" \
  --phases examples,coverage,fuzzing,stateful --checks all \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --no-color \
  --report json,ndjson,junit \
  --report-json-path "$REPORT_DIR/schemathesis.json" \
  --report-ndjson-path "$REPORT_DIR/schemathesis.ndjson" \
  --report-junit-path "$REPORT_DIR/schemathesis.junit.xml" \
  >"$REPORT_DIR/schemathesis.txt" 2>&1 || st_rc=$?
"$PY" "$HERE/summarize.py" "$REPORT_DIR/schemathesis.ndjson" "$REPORT_DIR" >"$REPORT_DIR/summary.txt" || true
st_summary=$(cat "$REPORT_DIR/summary.txt" 2>/dev/null || echo "no summary")
# Test cases run, and those with a failed check or an error (summarize.py counts them).
read -r st_cases st_failed < <("$PY" - "$REPORT_DIR/failures.json" <<'EOF' || echo "0 1"
import json, sys
summary = json.load(open(sys.argv[1]))
print(summary["cases"], summary["cases_with_failures"] + len(summary["network_errors"]))
EOF
)
sed -n '/^=* SUMMARY =*$/,$p' "$REPORT_DIR/schemathesis.txt" >&2 || true
say "schemathesis: exit $st_rc; $st_summary (details: $REPORT_DIR/failures.md)"
if [ "$st_cases" -lt "$MIN_CASES" ]; then
  say "schemathesis generated $st_cases test cases, fewer than $MIN_CASES: raise MAX_EXAMPLES"
  st_rc=1
fi

# --- did it survive? ------------------------------------------------------------
# A crash is a failure of its own; start the server again on the same data dir
# (which also shows it recovers) so the TLS checks below still run.
crash_rc=0
if ! kill -0 "$SERVER_PID" 2>/dev/null || ! "${CURL[@]}" -f -o /dev/null "$BASE/healthz" 2>/dev/null; then
  crash_rc=1
  cp "$REPORT_DIR/server.log" "$REPORT_DIR/server-crash.log"
  say "bindery died or stopped answering during schemathesis; its log: $REPORT_DIR/server-crash.log"
  grep -m3 -E 'Fatal error|runtime failure|crashed:|at /.*\.swift:[0-9]+' "$REPORT_DIR/server-crash.log" >&2 || true
  stop_server
  restarted=false
  for _ in 1 2 3; do
    if start_server; then restarted=true; break; fi
  done
  $restarted || { say "bindery would not start again on its data dir; log:"; tail -40 "$REPORT_DIR/server.log" >&2; exit 1; }
  say "restarted on $BASE for the TLS checks"
fi

# --- sslyze -------------------------------------------------------------------
say "sslyze: Mozilla intermediate profile"
ssl_rc=0
"$VENV/bin/sslyze" --cert "$PKI/admin.pem" --key "$PKI/admin-key.pem" --certinfo_ca_file "$PKI/ca.pem" \
  --mozilla_config=intermediate --json_out "$REPORT_DIR/sslyze.json" "127.0.0.1:$PORT" \
  >"$REPORT_DIR/sslyze.txt" 2>&1 || ssl_rc=$?
sed -n '/COMPLIANCE AGAINST/,$p' "$REPORT_DIR/sslyze.txt" >&2
# The scan itself must have reached the server with the client certificate.
grep -q 'SCANS COMPLETED' "$REPORT_DIR/sslyze.txt" || { say "sslyze did not complete a scan"; ssl_rc=1; }
grep -q 'Supplied CA file CA Store (N/A): *OK' "$REPORT_DIR/sslyze.txt" || {
  say "the server certificate does not verify against the development CA"; ssl_rc=1; }

# --- client certificates that must be refused --------------------------------
mtls_rc=0
"$PY" "$HERE/mtls_refusals.py" "$PKI" 127.0.0.1 "$PORT" "$DATA_DIR/refusal-certs" \
  >"$REPORT_DIR/mtls.txt" 2>&1 || mtls_rc=$?
cat "$REPORT_DIR/mtls.txt" >&2

# --- the server must still be up, and stop cleanly ---------------------------
alive_rc=0
if ! "${CURL[@]}" -f -o /dev/null "$BASE/healthz"; then
  say "bindery no longer answers /healthz after the run"; alive_rc=1
fi
stop_server

# --- summary ------------------------------------------------------------------
mtls_passed=$(grep -c '^ok ' "$REPORT_DIR/mtls.txt" || true)
mtls_failed=$(grep -c '^FAIL ' "$REPORT_DIR/mtls.txt" || true)
passed=$(( st_cases - st_failed + mtls_passed + (ssl_rc == 0 ? 1 : 0) + (alive_rc == 0 ? 1 : 0) + (crash_rc == 0 ? 1 : 0) ))
failed=$(( st_failed + mtls_failed + (ssl_rc != 0 ? 1 : 0) + (alive_rc != 0 ? 1 : 0) + (crash_rc != 0 ? 1 : 0) ))
[ "$mtls_rc" -ne 0 ] && [ "$mtls_failed" -eq 0 ] && failed=$((failed + 1))
status=passed
if [ "$st_rc" -ne 0 ] || [ "$ssl_rc" -ne 0 ] || [ "$mtls_rc" -ne 0 ] || [ "$alive_rc" -ne 0 ] || [ "$crash_rc" -ne 0 ]; then status=FAILED; fi
echo "contract: $status — schemathesis $st_cases cases ($st_summary)$([ "$crash_rc" -ne 0 ] && echo ', SERVER CRASHED'), sslyze intermediate $([ "$ssl_rc" -eq 0 ] && echo compliant || echo NOT compliant), mTLS refusals $mtls_passed/$((mtls_passed + mtls_failed)); raw outputs in $REPORT_DIR"
echo "$passed passed, $failed failed"
[ "$status" = passed ]
