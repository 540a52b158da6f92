#!/usr/bin/env bash
# make deb-check: build the Debian package from this checkout and check it as an operator would
# meet it: lintian, its file list, the extracted binary (--version, serve on the packaged config
# pointed at a temporary directory, with real certificates and no development PKI), the unit
# (systemd-analyze verify), the man page (man -l), and the maintainer scripts (install, upgrade,
# remove, purge) where this machine has no bindery package of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }

out=.build/deb
rm -rf "$out"
line=$(packaging/build-deb.sh "$out")
echo "$line"
version=$(head -n1 VERSION)
deb="$out/bindery_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $deb"

echo "== lintian"
lintian_out=$(lintian --no-tag-display-limit --display-info "$deb" 2>&1 || true)
echo "${lintian_out:-(nothing to report)}"
if grep -q '^E: ' <<<"$lintian_out"; then fail "lintian reports errors"; fi

echo "== dpkg-deb -c"
listing=$(dpkg-deb -c "$deb")
for path in ./usr/bin/bindery ./lib/systemd/system/bindery.service ./etc/bindery/config.json ./etc/bindery/README \
    ./var/lib/bindery/ ./usr/share/man/man8/bindery.8.gz ./usr/share/bash-completion/completions/bindery \
    ./usr/share/zsh/vendor-completions/_bindery ./usr/share/doc/bindery/copyright ./usr/share/doc/bindery/changelog.gz; do
    grep -q " $path\$" <<<"$listing" || fail "$path is not in the package"
done
grep -q '^drwx------ root/root .* ./var/lib/bindery/$' <<<"$listing" || fail "/var/lib/bindery is not 0700 root"
grep -q '^drwxr-xr-x root/root .* ./$' <<<"$listing" || fail "the package's root directory is not 0755"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
grep -q 'libssl3' <<<"$depends" || fail "Depends lacks libssl3"
grep -q 'libsqlite3-0' <<<"$depends" || fail "Depends lacks libsqlite3-0"
if grep -qi 'swift' <<<"$depends"; then fail "Depends names a Swift runtime: it must be linked statically"; fi
echo "files and Depends: ok"

work=$(mktemp -d "${TMPDIR:-/tmp}/bindery-deb-check.XXXXXX")
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
x="$work/root"
dpkg-deb -x "$deb" "$x"
bin="$x/usr/bin/bindery"
if ldd "$bin" | grep -qi swift; then fail "the binary links a Swift runtime dynamically"; fi

echo "== --version"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
"$bin" --version
"$bin" --version | grep -Eq "^bindery $version \(commit $commit, built [0-9]{4}-[0-9]{2}-[0-9]{2}T" \
    || fail "--version does not name $version and commit $commit"

echo "== serve on the packaged config, pointed at $work/data, with real certificates"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
    -keyout "$work/ca-key.pem" -out "$work/ca.pem" 2>/dev/null
issue() { # name, extensions
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$work/$1-key.pem" -out "$work/$1.csr" 2>/dev/null
    printf '%s\n' "$2" > "$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" -CAcreateserial \
        -days 2 -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}
issue server "subjectAltName=DNS:localhost,IP:127.0.0.1"$'\n'"extendedKeyUsage=serverAuth"
issue operator "subjectAltName=URI:spiffe://test/operator"$'\n'"extendedKeyUsage=clientAuth"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$x/etc/bindery/config.json" "$work" "$port" > "$work/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
work, port = sys.argv[2], sys.argv[3]
config.update(dataDir=work + "/data", listen=["127.0.0.1:" + port], kernel="simulated",
              memoryDirectories=[work + "/data/memory"], vmmSocket=work + "/run/vmm.sock",
              tls={"certificate": work + "/server.pem", "key": work + "/server-key.pem", "clientCA": work + "/ca.pem"},
              roles={"uri:spiffe://test/operator": "operator"})
json.dump(config, sys.stdout)
PY
mkdir -p "$work/run"
"$bin" serve --config "$work/config.json" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
    grep -q "serving https" "$work/serve.log" && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; fail "serve exited"; }
    sleep 0.1
done
grep -q "serving https" "$work/serve.log" || { cat "$work/serve.log"; fail "serve did not come up"; }
host=$(curl -sf --cacert "$work/ca.pem" --cert "$work/operator.pem" --key "$work/operator-key.pem" \
    "https://localhost:$port/v1/host") || { cat "$work/serve.log"; fail "GET /v1/host"; }
python3 - "$host" "$version" "$commit" <<'PY' || fail "GET /v1/host does not report the build"
import json, sys
build = json.loads(sys.argv[1])["bindery"]
assert build["version"] == sys.argv[2] and build["commit"] == sys.argv[3], build
print("GET /v1/host:", build)
PY
[ ! -e "$work/data/pki" ] || fail "serve with configured TLS created $work/data/pki"
kill "$server"; wait "$server" || true; server=""
echo "no development PKI created: ok"

echo "== a misspelt config key is refused"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["listenn"]=c.pop("listen"); json.dump(c, open(sys.argv[2], "w"))' \
    "$work/config.json" "$work/typo.json"
if "$bin" serve --config "$work/typo.json" > "$work/typo.log" 2>&1; then fail "serve accepted an unknown key"; fi
grep -q "unknown key(s) listenn" "$work/typo.log" || { cat "$work/typo.log"; fail "the refusal does not name the key"; }
echo "refused: $(grep -o 'unknown key(s) listenn' "$work/typo.log")"

echo "== systemd-analyze verify on the packaged unit"
sed "s#/usr/bin/bindery#$bin#" "$x/lib/systemd/system/bindery.service" > "$work/bindery.service"
verify=$(MANPATH="$x/usr/share/man" systemd-analyze verify "$work/bindery.service" 2>&1 || true)
[ -z "$verify" ] || { echo "$verify"; fail "systemd-analyze verify"; }
echo "bindery.service: verified"

echo "== man -l"
warnings=$(man -l --warnings=all "$x/usr/share/man/man8/bindery.8.gz" 2>&1 >/dev/null || true)
[ -z "$warnings" ] || { echo "$warnings"; fail "the man page renders with warnings"; }
MANWIDTH=80 man -l "$x/usr/share/man/man8/bindery.8.gz" 2>/dev/null | grep -q "bindery serve\|serve" || fail "the man page has no serve"
echo "bindery(8): $(MANWIDTH=80 man -l "$x/usr/share/man/man8/bindery.8.gz" 2>/dev/null | wc -l) lines, no warnings"

echo "== maintainer scripts"
if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: not root"
elif dpkg-query -W -f='${Status}' bindery 2>/dev/null | grep -q installed; then
    echo "skipped: this machine has a bindery package installed; not touching it"
else
    dpkg -i "$deb" >/dev/null
    [ "$(stat -c %a /var/lib/bindery)" = 700 ] || fail "/var/lib/bindery is not 0700 after install"
    /usr/bin/bindery migrate --data-dir /var/lib/bindery >/dev/null
    echo '{"kept": true}' > /var/lib/bindery/marker.json
    dpkg -i "$deb" >/dev/null  # an upgrade: postinst migrates the existing database
    [ -f /var/lib/bindery/marker.json ] || fail "an upgrade lost the data dir"
    dpkg -r bindery >/dev/null
    [ -f /var/lib/bindery/bindery.sqlite ] || fail "remove deleted the database"
    [ -f /etc/bindery/config.json ] || fail "remove deleted the conffile"
    dpkg -P bindery >/dev/null
    [ ! -e /var/lib/bindery ] || fail "purge left /var/lib/bindery"
    [ ! -e /etc/bindery/config.json ] || fail "purge left /etc/bindery/config.json"
    echo "install, upgrade (migrate), remove (data and config kept), purge (both gone): ok"
fi
echo "deb-check: passed ($deb, $(du -h "$deb" | cut -f1))"
