#!/usr/bin/env bash
# Builds (once) the Linux 6.12 with CONFIG_IOMMUFD that `make kernel-test` boots for the iommufd
# path, from Debian's linux-source-6.12, and prints the path of its bzImage on stdout.
# Cached in .build/kernel-test/iommufd-<source version>-<hash of the base target and the config
# fragment>/; progress goes to stderr. Build dependencies are installed with apt-get only when missing.
# Configuration: `make KCONFIG_ALLCONFIG=Tests/Kernel/iommufd-kernel.config allnoconfig`: only what
# the fragment turns on (and what that selects), about 1,160 objects where x86_64_defconfig +
# kvm_guest.config built 1,815, to keep `make test` within CI's 30 minutes. The resulting .config
# must hold every line of the fragment, or the build stops naming the ones that do not.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
CACHE=$REPO/.build/kernel-test
FRAGMENT=$REPO/Tests/Kernel/iommufd-kernel.config
JOBS=${KERNEL_JOBS:-$(( $(nproc) + 1 ))}   # one more than the cores: the build waits on the disk too
started=$(date +%s)
say() { echo "iommufd-kernel [$(( $(date +%s) - started ))s] $*" >&2; }
mkdir -p "$CACHE"

# Build dependencies: only those missing, with one apt-get update at most.
DEPS="linux-source-6.12 bison flex libelf-dev libssl-dev bc rsync make gcc xz-utils cpio"
missing=""
for p in $DEPS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing:$missing"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing > "$CACHE/apt.log" 2>&1 \
    || { $sudo apt-get update -qq >> "$CACHE/apt.log" 2>&1 \
         && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >> "$CACHE/apt.log" 2>&1; } \
    || { cat "$CACHE/apt.log" >&2; echo "iommufd-kernel: could not install$missing" >&2; exit 1; }
fi

VERSION=$(dpkg-query -W -f='${Version}' linux-source-6.12)
BASE=allnoconfig   # the make target the fragment is applied on; hashed with it
HASH=$({ echo "base: $BASE"; cat "$FRAGMENT"; } | sha256sum | cut -c1-12)
OUT=$CACHE/iommufd-$VERSION-$HASH
if [ -f "$OUT/bzImage" ] && [ -f "$OUT/config" ]; then
  say "cached: $OUT/bzImage"
  echo "$OUT/bzImage"
  exit 0
fi

# Every line of the fragment, checked against a .config: prints the ones that do not hold.
unmet() {  # $1 .config
  local line name value
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue;; esac
    name=${line%%=*} value=${line#*=}
    if [ "$value" = n ]; then
      grep -q "^$name=" "$1" && echo "$name (wanted n, got $(grep "^$name=" "$1" | cut -d= -f2-))"
    else
      grep -qxF "$line" "$1" || echo "$name (wanted $value, got $(grep "^$name=" "$1" | cut -d= -f2- || echo 'not set'))"
    fi
  done < "$FRAGMENT"
  return 0
}

TARBALL=/usr/src/linux-source-${VERSION%%-*}.tar.xz
[ -f "$TARBALL" ] || TARBALL=$(ls /usr/src/linux-source-6.12*.tar.xz | head -1)
SRC=$CACHE/linux-source-$VERSION
BUILD=$CACHE/iommufd-build-$VERSION-$HASH
if [ ! -f "$SRC/Makefile" ]; then
  say "unpacking $TARBALL"
  rm -rf "$SRC" "$SRC.tmp"; mkdir -p "$SRC.tmp"
  tar -xJf "$TARBALL" -C "$SRC.tmp" --strip-components=1
  mv "$SRC.tmp" "$SRC"
fi

say "configuring $VERSION ($BASE + fragment, $HASH)"
rm -rf "$BUILD"; mkdir -p "$BUILD"
# allnoconfig with KCONFIG_ALLCONFIG: the fragment's values are taken as given, every other
# symbol that can be n is n (a symbol the fragment makes visible does not get its default).
make -s -C "$SRC" O="$BUILD" KCONFIG_ALLCONFIG="$FRAGMENT" "$BASE" >&2
bad=$(unmet "$BUILD/.config")
if [ -n "$bad" ]; then
  echo "iommufd-kernel: the configuration lacks what Tests/Kernel/iommufd-kernel.config asks for:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  exit 1
fi

say "building bzImage with -j$JOBS (about 5 minutes on 2 cores)"
build_started=$(date +%s)
if ! make -C "$SRC" O="$BUILD" -j"$JOBS" bzImage > "$BUILD.log" 2>&1; then
  tail -40 "$BUILD.log" >&2
  echo "iommufd-kernel: the build failed; the log is $BUILD.log" >&2
  exit 1
fi
say "built in $(( $(date +%s) - build_started ))s"
bad=$(unmet "$BUILD/.config")
[ -z "$bad" ] || { echo "iommufd-kernel: the built .config lacks: $bad" >&2; exit 1; }
mkdir -p "$OUT.tmp"
cp "$BUILD/arch/x86/boot/bzImage" "$OUT.tmp/bzImage"
cp "$BUILD/.config" "$OUT.tmp/config"
make -s -C "$SRC" O="$BUILD" kernelrelease > "$OUT.tmp/release"
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
# The source (1.7 GB) and object trees are large, and this configuration is cached: drop them
# (KEEP_KERNEL_BUILD=1 keeps both, to iterate on the configuration).
[ -n "${KEEP_KERNEL_BUILD:-}" ] || rm -rf "$BUILD" "$SRC"
say "cached: $OUT/bzImage ($(cat "$OUT/release"))"
echo "$OUT/bzImage"
