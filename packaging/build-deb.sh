#!/usr/bin/env bash
# Builds bindery_<version>_amd64.deb with dpkg-deb: a release build with the Swift runtime linked
# statically, the systemd unit, /etc/bindery/config.json and its README, bindery(8) and bash and
# zsh completions generated from the command's own help. Usage: packaging/build-deb.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/deb}
scratch=.build-deb
swift=${SWIFT:-swift}

version=$(head -n1 VERSION)
changelog_version=$(sed -n '1s/^bindery (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ "$version" != "$changelog_version" ]; then
    echo "VERSION says $version but packaging/debian/changelog starts at $changelog_version: add a changelog entry" >&2
    exit 1
fi
# File times and the build date come from the commit, so the same commit builds the same package.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

# Full RELRO and immediate binding (lintian's hardening checks); the C shims get FORTIFY.
"$swift" build -c release --product bindery --static-swift-stdlib --scratch-path "$scratch" \
    -Xlinker -z -Xlinker now -Xlinker -z -Xlinker relro -Xcc -D_FORTIFY_SOURCE=2
binary="$scratch/release/bindery"

# The manual comes from the command's own help through swift-argument-parser's generator. It
# builds the debug products (what make test builds anyway); the help text is the same.
"$swift" package plugin generate-manual --configuration debug --section 8 \
    --authors "The Bindery authors" --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" >/dev/null
manual=.build/plugins/GenerateManual/outputs/bindery/bindery.8

root=$(mktemp -d "${TMPDIR:-/tmp}/bindery-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"  # the package's ./ entry: mktemp made it 0700
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/bindery" \
    "$root/usr/share/man/man8" "$root/usr/share/doc/bindery" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"
install -d -m 0700 "$root/var/lib/bindery"

install -m 0755 "$binary" "$root/usr/bin/bindery"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/bindery"
install -m 0644 packaging/systemd/bindery.service "$root/lib/systemd/system/bindery.service"
install -m 0644 packaging/etc/config.json packaging/etc/README "$root/etc/bindery/"
# mdoc wants .Pp, not blank lines, between paragraphs.
sed 's/^$/.Pp/' "$manual" | gzip -9n > "$root/usr/share/man/man8/bindery.8.gz"
# bash-completion sources the script: no #! line.
"$root/usr/bin/bindery" --generate-completion-script bash | sed '1{/^#!/d}' > "$root/usr/share/bash-completion/completions/bindery"
"$root/usr/bin/bindery" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_bindery"
chmod 0644 "$root/usr/share/bash-completion/completions/bindery" "$root/usr/share/zsh/vendor-completions/_bindery"
install -m 0644 packaging/debian/copyright README.md THREAT_MODEL.md "$root/usr/share/doc/bindery/"
gzip -9n < packaging/debian/changelog > "$root/usr/share/doc/bindery/changelog.gz"
chmod 0644 "$root/usr/share/doc/bindery/changelog.gz"
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"

# Depends: exactly the shared libraries the binary links, as dpkg-shlibdeps maps them to packages.
shlib=$(mktemp -d "${TMPDIR:-/tmp}/bindery-shlibs.XXXXXX")
mkdir "$shlib/debian"
printf 'Source: bindery\n\nPackage: bindery\nArchitecture: amd64\n' > "$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O --warnings=0 "$root/usr/bin/bindery" | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlib"
size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    packaging/debian/control.in > "$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

mkdir -p "$out"
package="$out/bindery_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$package" >/dev/null
echo "$package ($(du -h "$package" | cut -f1); Depends: $depends)"
