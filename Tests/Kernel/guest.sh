#!/bin/sh
# Runs inside the QEMU guest, chrooted into the host's tree (read-only over 9p).
# $1: the repository, $2: the edu device's PCI address, $3: a writable scratch directory,
# $4: type1 (a Debian kernel: the type1 executor checks) or iommufd (a kernel with CONFIG_IOMMUFD:
# the iommufd executor checks first, then the type1 ones, which it has too).
set -eu
REPO=$1 EDU=$2 BIN=$1/.build/debug SCRATCH=$3 MODE=${4:-type1} STANDIN_BIN=$1/.build/kernel-test/vmm-standin
step() { echo "KT-STEP $(date +%s.%N | cut -c1-14) $*"; }

if [ "$MODE" = iommufd ]; then
  [ -c /dev/iommu ] || { echo "KT-FAIL no /dev/iommu on $(uname -r)"; exit 1; }
  step "executor checks on /dev/iommu and the VFIO cdev"
  "$BIN/bindery-bench" kernel-check --iommufd --device "$EDU"
fi

step "executor checks on /dev/vfio"
"$BIN/bindery-bench" kernel-check --device "$EDU"

step "bindery serve --kernel linux, under a service manager's fd store (Tests/Kernel/fdstore-peer.py)"
DATA=$SCRATCH/bindery
mkdir -p "$DATA"
python3 "$REPO/Tests/Kernel/fdstore-peer.py" "$SCRATCH/peer" -- "$BIN/bindery" serve --kernel linux --data-dir "$DATA" \
  --listen 127.0.0.1:8443 --memory-dir /dev/shm > $SCRATCH/serve.out 2> $SCRATCH/serve.err &
SERVE=$!
for i in $(seq 1 300); do grep -q "READY=1" $SCRATCH/peer/log 2>/dev/null && break; sleep 0.1; done
grep -q "kernel driver: linux" $SCRATCH/serve.err || { cat $SCRATCH/serve.err; echo "KT-FAIL serve did not start on the linux kernel"; exit 1; }
PKI="$DATA/pki"
api() { curl -s --cacert "$PKI/ca.pem" --cert "$PKI/admin.pem" --key "$PKI/admin-key.pem" "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

step "GET /v1/host: real kernel, nesting unsupported"
HOST=$(api https://localhost:8443/v1/host)
[ "$(echo "$HOST" | field "['kernel']['driver']")" = linux ] || { echo "KT-FAIL host: $HOST"; exit 1; }
[ "$(echo "$HOST" | field "['iommu']['nesting']['supported']")" = False ] || { echo "KT-FAIL nesting should be unsupported: $HOST"; exit 1; }
[ "$MODE" != iommufd ] || [ "$(echo "$HOST" | field "['iommu']['iommufd']")" = True ] || { echo "KT-FAIL iommufd should be reported: $HOST"; exit 1; }
echo "host: $(echo "$HOST" | field "['kernel']['release']"), iommufd: $(echo "$HOST" | field "['iommu']['iommufd']"), nesting: $(echo "$HOST" | field "['iommu']['nesting'].get('reason')")"

step "GET /v1/devices finds the edu device (1234:11e8) and its group"
DEVICE=$(api "https://localhost:8443/v1/devices/$EDU")
[ "$(echo "$DEVICE" | field "['deviceId']")" = 0x11e8 ] || { echo "KT-FAIL device: $DEVICE"; exit 1; }
echo "edu $EDU in IOMMU group $(echo "$DEVICE" | field "['iommuGroup']"), driver $(echo "$DEVICE" | field ".get('driver')")"

step "a VM with memory backed by /dev/shm; assign edu managed"
truncate -s 2M /dev/shm/bindery-guest-memory
VM=$(api -X POST -H 'Content-Type: application/json' \
  --data '{"name":"kt","memory":[{"guestAddress":"0x0","size":2097152,"backing":{"path":"/dev/shm/bindery-guest-memory"}}]}' \
  https://localhost:8443/v1/vms | field "['id']")
api -X PUT -H 'Content-Type: application/json' --data '{"managed":true}' "https://localhost:8443/v1/vms/$VM/devices/$EDU" > /dev/null
for i in $(seq 1 100); do
  [ "$(api "https://localhost:8443/v1/devices/$EDU" | field "['status']['phase']")" = Attached ] && break; sleep 0.1
done
[ "$(api "https://localhost:8443/v1/devices/$EDU" | field "['status']['phase']")" = Attached ] || { api "https://localhost:8443/v1/devices/$EDU"; echo "KT-FAIL not attached"; exit 1; }
[ "$(basename "$(readlink "/sys/bus/pci/devices/$EDU/driver")")" = vfio-pci ] || { echo "KT-FAIL edu is not on vfio-pci"; exit 1; }
echo "VM $VM ready, edu attached on vfio-pci"

if [ "$MODE" = iommufd ]; then
  step "GET /v1/host again: probed with edu on vfio-pci, the kernel's own refusal"
  HOST=$(api https://localhost:8443/v1/host)
  REASON=$(echo "$HOST" | field "['iommu']['nesting'].get('reason')")
  echo "$REASON" | grep -q "IOMMU_HWPT_ALLOC_NEST_PARENT answered EOPNOTSUPP" || { echo "KT-FAIL host should name the nesting-parent refusal: $HOST"; exit 1; }
  echo "host after the device: $REASON"
fi

step "a VMM stand-in receives edu, the container and guest memory over the VMM socket, and does DMA"
STANDIN=$SCRATCH/standin
rm -f $STANDIN.status $STANDIN.stop
"$BIN/bindery" vmm attach --vm "$VM" --ca "$PKI/ca.pem" --cert "$PKI/admin.pem" --key "$PKI/admin-key.pem" \
  -- "$STANDIN_BIN" $STANDIN.status $STANDIN.stop > $STANDIN.out 2>&1 &
ATTACH=$!
rounds() { sed -n 's/^rounds \([0-9]*\) failures \([0-9]*\)$/\1 \2/p' $STANDIN.status 2>/dev/null; }
wait_rounds() {  # until at least $1 round trips, or the stand-in is gone
  for i in $(seq 1 600); do
    set -- "$1" $(rounds)
    [ -n "${2:-}" ] && [ "$2" -ge "$1" ] && return 0
    kill -0 $ATTACH 2>/dev/null || { cat $STANDIN.out; echo "KT-FAIL the VMM stand-in stopped"; exit 1; }
    sleep 0.05
  done
  cat $STANDIN.out; echo "KT-FAIL fewer than $1 DMA round trips"; exit 1
}
wait_rounds 3
HOLDER=$(api "https://localhost:8443/v1/vms/$VM" | field "['vmm']['pid']")
[ "$HOLDER" = "$(pgrep -f vmm-standin | head -1)" ] || { api "https://localhost:8443/v1/vms/$VM"; echo "KT-FAIL the VM should name the stand-in as its VMM"; exit 1; }
grep "vmm-standin: fd" $STANDIN.out | sed 's/^/  /'
echo "vmm: stand-in (pid $HOLDER) holds $VM; $(rounds | cut -d' ' -f1) DMA round trips so far"
BEFORE=$(api "https://localhost:8443/v1/devices/$EDU" | field "['status']['phase']")

step "SIGKILL bindery; the fd-store peer starts it again with the kept descriptors"
OLD=$(cat $SCRATCH/peer/pid)
AT_KILL=$(rounds | cut -d' ' -f1)
kill -USR1 $SERVE
for i in $(seq 1 300); do [ "$(cat $SCRATCH/peer/pid)" != "$OLD" ] && [ "$(grep -c READY=1 $SCRATCH/peer/log)" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c READY=1 $SCRATCH/peer/log)" -ge 2 ] || { cat $SCRATCH/peer/log; tail -20 $SCRATCH/serve.err; echo "KT-FAIL bindery did not come back"; exit 1; }
grep -q "adopt: $VM taken over" $SCRATCH/serve.err || { grep -i "adopt\|fd store" $SCRATCH/serve.err; echo "KT-FAIL $VM was not adopted"; exit 1; }
grep "adopt: $VM\|fd store" $SCRATCH/serve.err | tail -2 | sed 's/^.*bindery: /  /'
KILLED=$(sed -n 's/^\([0-9.]*\) killed .*/\1/p' $SCRATCH/peer/log | tail -1)
READY_AGAIN=$(grep "READY=1" $SCRATCH/peer/log | tail -1 | cut -d' ' -f1)
echo "restart: SIGKILL to READY=1 (first reconcile pass done, VM adopted) in $(python3 -c "print(f'{$READY_AGAIN - $KILLED:.2f}')") s"
wait_rounds $(( AT_KILL + 10 ))
set -- $(rounds)
[ "$2" = 0 ] || { cat $STANDIN.out; echo "KT-FAIL $2 DMA round trips failed"; exit 1; }
AFTER=$(api "https://localhost:8443/v1/devices/$EDU" | field "['status']['phase']")
[ "$AFTER" = "$BEFORE" ] || { echo "KT-FAIL edu was $BEFORE before the restart and is $AFTER after"; exit 1; }
[ "$(basename "$(readlink "/sys/bus/pci/devices/$EDU/driver")")" = vfio-pci ] || { echo "KT-FAIL edu left vfio-pci"; exit 1; }
[ "$(api https://localhost:8443/v1/audit/verify | field "['valid']")" = True ] || { echo "KT-FAIL audit chain after the restart"; exit 1; }
touch $STANDIN.stop
wait $ATTACH || { cat $STANDIN.out; echo "KT-FAIL the VMM stand-in failed"; exit 1; }
echo "vmm: $(tail -1 $STANDIN.out | sed 's/^vmm-standin: //') ($AT_KILL before the SIGKILL), edu $AFTER throughout"

step "a binding is refused, naming the missing capability"
REFUSAL=$(api -X POST -H 'Content-Type: application/json' \
  --data "{\"vm\":\"$VM\",\"device\":\"$EDU\",\"type\":\"guest-page-table\",\"guestPasid\":1,\"format\":\"intel-vtd\",\"version\":1,\"pageTable\":{\"address\":\"0x1000\",\"addressWidth\":48}}" \
  https://localhost:8443/v1/bindings)
echo "$REFUSAL" | grep -q '"status":422' && echo "$REFUSAL" | grep -q "nesting" || { echo "KT-FAIL binding refusal should name the capability: $REFUSAL"; exit 1; }
[ "$MODE" != iommufd ] || echo "$REFUSAL" | grep -q "EOPNOTSUPP" || { echo "KT-FAIL binding refusal should carry the kernel's EOPNOTSUPP: $REFUSAL"; exit 1; }
echo "refused: $(echo "$REFUSAL" | field "['detail']" | cut -c1-160)"

step "detach; edu goes back to its original driver (none)"
api -X DELETE "https://localhost:8443/v1/vms/$VM/devices/$EDU" > /dev/null
for i in $(seq 1 100); do [ ! -e "/sys/bus/pci/devices/$EDU/driver" ] && break; sleep 0.1; done
[ ! -e "/sys/bus/pci/devices/$EDU/driver" ] || { tail -15 $SCRATCH/serve.err; tail -8 $SCRATCH/peer/log; api "https://localhost:8443/v1/devices/$EDU"; echo "KT-FAIL edu still bound to $(readlink "/sys/bus/pci/devices/$EDU/driver")"; exit 1; }

step "audit chain verifies"
[ "$(api https://localhost:8443/v1/audit/verify | field "['valid']")" = True ] || { echo "KT-FAIL audit chain"; exit 1; }
kill "$SERVE"; wait "$SERVE" || true
echo "KT-PASS"
