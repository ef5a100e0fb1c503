#!/usr/bin/env bash
# Boot the cgroup v2 test guest (built by image.sh) and run SHARE/guest-test.sh in it as the
# lingering test user (uid 1000). SHARE is shared read-only at /mnt/ward. Prints the
# script's stdout, its stderr to stderr, and exits with its status. Run as root.
# Usage: tests/vm/run.sh SHARE_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
share=$(cd "$1" && pwd)
img=$(bash "$here/image.sh")
results=$(mktemp -d "${TMPDIR:-/tmp}/ward-vm-results.XXXXXX")
trap 'rm -rf "$results"' EXIT
# the guest enforces the host's mode bits on 9p: the test user must be able to read
chmod -R o+rX "$share"
status=0
timeout "${WARD_VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -machine pc -cpu max -smp 2 -m 2048 \
    -nodefaults -no-user-config -display none -no-reboot -nic none \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 panic=1 quiet ward.test=1" \
    -drive "file=$img/rootfs.ext4,format=raw,if=virtio,snapshot=on,cache=unsafe" \
    -fsdev "local,id=fs0,path=$share,security_model=none,multidevs=remap,readonly=on" -device virtio-9p-pci,fsdev=fs0,mount_tag=share0 \
    -fsdev "local,id=fs1,path=$results,security_model=none,multidevs=remap" -device virtio-9p-pci,fsdev=fs1,mount_tag=results \
    -serial "file:$results/console.log" || status=$?
if [ ! -f "$results/status" ]; then
    if [ "$status" = 124 ]; then echo "tests/vm/run.sh: the guest timed out" >&2; else echo "tests/vm/run.sh: QEMU exited ($status) without a status" >&2; fi
    echo "--- last lines of the guest console:" >&2
    tail -30 "$results/console.log" >&2 || true
    exit 1
fi
cat "$results/stdout"
cat "$results/stderr" >&2
exit "$(cat "$results/status")"
