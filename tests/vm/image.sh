#!/usr/bin/env bash
# Build, once, the Debian bookworm guest of the cgroup v2 test tier (see
# ../../../shared/VM-NOTES.md): systemd, pure cgroup v2, a lingering test user (uid 1000)
# with subordinate ids, slirp4netns and pasta. Cached outside the repo, keyed by a hash of
# this script and guest/; prints the cache directory, and nothing else, on stdout (run.sh
# captures it): everything else this script or its tools say goes to stderr. Run as root.
set -euo pipefail
exec 3>&1 1>&2
here=$(cd "$(dirname "$0")" && pwd)
cache=${WARD_VM_CACHE:-${HOME:-/root}/.cache/ward-vm}
key=$(cat "$here/image.sh" "$here/../debootstrap.sh" "$here"/guest/* | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -f "$out/rootfs.ext4" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
    echo "$out" >&3
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "tests/vm/image.sh: run as root (debootstrap)" >&2; exit 1; }
missing=()
for p in debootstrap e2fsprogs qemu-system-x86; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/vm/image.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ward-vm-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
bash "$here/../debootstrap.sh" "$root" \
    linux-image-amd64,initramfs-tools,kmod,udev,systemd,systemd-sysv,libpam-systemd,dbus,dbus-user-session,uidmap,slirp4netns,passt,util-linux,procps,iproute2,keyutils,libseccomp2,ca-certificates,python3
chroot "$root" useradd -m -u 1000 -s /bin/sh tester
echo "tester:100000:65536" >"$root/etc/subuid"
echo "tester:100000:65536" >"$root/etc/subgid"
mkdir -p "$root/var/lib/systemd/linger" && touch "$root/var/lib/systemd/linger/tester"
echo ward-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 rw 0 1\n' >"$root/etc/fstab"
install -m 0755 "$here/guest/ward-guest-run" "$root/usr/local/sbin/ward-guest-run"
install -m 0644 "$here/guest/ward-test.service" "$root/etc/systemd/system/ward-test.service"
chroot "$root" systemctl enable ward-test.service >/dev/null 2>&1
chroot "$root" systemctl mask getty@tty1.service serial-getty@ttyS0.service >/dev/null 2>&1 || true
# a small initramfs: only what boots from virtio
printf 'MODULES=list\n' >"$root/etc/initramfs-tools/conf.d/ward"
printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
chroot "$root" update-initramfs -u -k all >/dev/null 2>&1
mkdir -p "$out.tmp"
cp "$root"/boot/vmlinuz-* "$out.tmp/vmlinuz" && chmod 0644 "$out.tmp/vmlinuz"
cp "$root"/boot/initrd.img-* "$out.tmp/initrd.img" && chmod 0644 "$out.tmp/initrd.img"
rm -rf "$root"/var/cache/apt/archives/*.deb
mkfs.ext4 -q -L ward -d "$root" "$out.tmp/rootfs.ext4" 2G
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out" >&3
