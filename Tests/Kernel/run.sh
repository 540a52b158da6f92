#!/usr/bin/env bash
# make kernel-test: the Linux executor and the daemon on real kernels, in QEMU (TCG).
# Downloads Debian's kernel packages into .build/kernel-test (never installs them), builds a
# busybox initramfs with the vfio and 9p modules, boots with an emulated Intel IOMMU and the
# edu device, and runs Tests/Kernel/guest.sh inside, chrooted into this machine's tree.
# Then builds (once, cached) a 6.12 with CONFIG_IOMMUFD from Debian's linux-source-6.12 and
# runs the iommufd checks on it the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
CACHE=$REPO/.build/kernel-test
# The guest's scratch tmpfs: a host directory that cannot hide the repository (CI clones
# into a temporary folder, so never /tmp).
SCRATCH=mnt
case "$REPO" in /mnt|/mnt/*) SCRATCH=media;; esac
mkdir -p "$CACHE"
started=$(date +%s)
say() { echo "kernel-test [$(( $(date +%s) - started ))s] $*"; }

find_kernels() {
  packages=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  newer=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9.]+\+deb12-amd64$' 2>/dev/null | awk '{print $1}' | sort -V | tail -1)
}
find_kernels
# A new machine may have empty package lists: update once, then look again for both kernels.
if [ -z "$packages" ] || [ -z "$newer" ]; then apt-get update -qq; find_kernels; fi
[ -n "$packages" ] || { echo "kernel-test: no linux-image-amd64 package found"; exit 1; }
[ -n "$newer" ] || { echo "kernel-test: no linux-image-6.12.*+deb12-amd64 package found"; exit 1; }
packages="$packages $newer"

# An initramfs: static busybox as /init, the modules listed (with their dependencies) from the
# kernel tree $2 (none for a kernel with everything built in), mounting this machine's tree over
# 9p and running Tests/Kernel/guest.sh chrooted into it in mode $4 (type1 or iommufd).
make_initrd() {  # $1 initrd path, $2 module root ("" for none), $3 module version, $4 guest mode
  local initrd=$1 root=$2 version=$3 mode=$4 staging=${1%.cpio.gz}
  [ -f "$initrd" ] && return 0
  rm -rf "$staging"; mkdir -p "$staging"/{bin,proc,sys,dev,host,modules}
  cp /bin/busybox "$staging/bin/busybox"
  : > "$staging/modules/order"
  if [ -n "$root" ]; then
    local wanted=""
    for name in virtio_pci 9pnet_virtio 9p vfio_iommu_type1 vfio-pci; do  # one name per call: the rest would be parameters
      wanted="$wanted $(modprobe -d "$root" -S "$version" --show-depends "$name" 2>/dev/null | awk '/^insmod/ {print $2}')"
    done
    for module in $wanted; do
      local name
      name=$(basename "$module")
      grep -qx "/modules/${name%.xz}" "$staging/modules/order" && continue
      cp "$module" "$staging/modules/$name"
      case "$name" in *.xz) xz -d "$staging/modules/$name"; name=${name%.xz};; esac
      echo "/modules/$name" >> "$staging/modules/order"
    done
  fi
  cat > "$staging/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in \$(cat /modules/order); do insmod \$m 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount -t devtmpfs dev /host/dev
mount -t tmpfs scratch /host/$SCRATCH; mkdir -p /host/dev/shm; mount -t tmpfs shm /host/dev/shm
ip link set lo up
EDU=""
for d in /sys/bus/pci/devices/*; do
  [ "\$(cat \$d/vendor)" = 0x1234 ] && [ "\$(cat \$d/device)" = 0x11e8 ] && EDU=\$(basename \$d)
done
echo "KT-BOOTED \$(uname -r) edu=\$EDU"
chroot /host /bin/sh $REPO/Tests/Kernel/guest.sh $REPO \$EDU /$SCRATCH $mode || echo "KT-FAIL guest script failed"
poweroff -f
INIT
  chmod +x "$staging/init"
  (cd "$staging" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"
}

# Boots a kernel under TCG with an emulated Intel IOMMU and edu, and reads the verdict.
qemu_boot() {  # $1 kernel, $2 initrd, $3 extra intel-iommu options, $4 name, $5 label, $6 log, $7 extra QEMU/append settings
  local kernel=$1 initrd=$2 options=$3 name=$4 label=$5 log=$6 smp=2 append="console=ttyS0 intel_iommu=on panic=-1 quiet"
  # KERNEL.md: TCG racing the kernel's text patching oopsed 2 boots in 95 with -smp 2; none with nohz=off or -smp 1.
  [ "$7" = stable ] && { smp=1; append="$append nohz=off"; }
  say "booting $name ($label)"
  local booted
  booted=$(date +%s)
  timeout 240 qemu-system-x86_64 -machine q35,kernel-irqchip=split -accel tcg -m 2G -smp $smp -nographic -no-reboot -net none \
    -kernel "$kernel" -initrd "$initrd" -append "$append" \
    -device "intel-iommu,intremap=on,caching-mode=on$options" -device edu \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap > "$log" 2>&1 || true
  grep -E "^(KT-|ok |FAIL |kernel-check|host:|host after|edu |VM |vmm|restart:|  vmm-standin: fd|  adopt|  fd store|refused:|probe:|GET_HW_INFO:)" "$log" | sed "s/^/  /" || true
  if ! grep -q "^KT-PASS" "$log"; then
    say "FAILED on $name ($label) after $(( $(date +%s) - booted ))s; the console log is $log"
    tail -30 "$log"
    return 1
  fi
  say "passed on $name ($label) in $(( $(date +%s) - booted ))s"
}

boot() {  # $1 package, $2 extra intel-iommu options, $3 label
  local package=$1 options=$2 label=$3 root=$CACHE/$1
  if [ ! -d "$root/lib/modules" ]; then
    say "fetching $package"
    (cd "$CACHE" && apt-get download -qq "$package" >/dev/null) || { apt-get update -qq; (cd "$CACHE" && apt-get download -qq "$package"); }
    dpkg -x "$CACHE/${package}"_*.deb "$root"
  fi
  local version
  version=$(ls "$root/lib/modules")
  depmod -b "$root" "$version"
  make_initrd "$CACHE/$package.initrd.cpio.gz" "$root" "$version" type1
  qemu_boot "$root/boot/vmlinuz-$version" "$CACHE/$package.initrd.cpio.gz" "$options" "$version" "$label" "$CACHE/$package.$label.log" ""
}

# The 6.12 with CONFIG_IOMMUFD built from Debian's linux-source-6.12 (Tests/Kernel/iommufd-kernel.sh,
# cached): everything built in, booted in scalable mode, running the iommufd checks.
boot_iommufd() {
  say "the iommufd kernel (Tests/Kernel/iommufd-kernel.sh)"
  local kernel
  kernel=$(Tests/Kernel/iommufd-kernel.sh) || { say "FAILED to build the iommufd kernel"; return 1; }
  local directory
  directory=$(dirname "$kernel")
  make_initrd "$directory/initrd.cpio.gz" "" "" iommufd
  qemu_boot "$kernel" "$directory/initrd.cpio.gz" ",x-scalable-mode=on,x-pasid-mode=on" "$(cat "$directory/release")" \
    "iommufd, scalable-mode+pasid" "$directory/boot.log" stable
}

# The VMM stand-in the guest runs under `bindery vmm attach` (built here: the guest has no compiler).
# cc where there is one, else the clang that comes with Swift.
compiler=${CC:-$(command -v cc || command -v clang || echo "$(dirname "$(readlink -f "$(command -v swift)")")/clang")}
"$compiler" -O2 -Wall -Werror -o "$CACHE/vmm-standin" Tests/Kernel/vmm-standin.c

status=0
first=1
# KERNEL_TEST_ONLY=iommufd boots only the iommufd kernel (for working on it); CI boots all three.
[ "${KERNEL_TEST_ONLY:-}" != iommufd ] || packages=""
for package in $packages; do
  boot "$package" "" "default" || status=1
  if [ $first = 1 ]; then boot "$package" ",x-scalable-mode=on,x-pasid-mode=on" "scalable-mode+pasid" || status=1; first=0; fi
done
boot_iommufd || status=1
say "done"
exit $status
