#!/usr/bin/env bash
# Build, once, the container tier's image root (a debootstrapped Debian bookworm, no
# registry): python3 and gcc for the tests' programs and helpers, util-linux, uidmap,
# slirp4netns and pasta, and the unprivileged user `worker` (uid 1000) with subordinate ids.
# Cached as a tarball outside the repo, keyed by a hash of this script; prints its path, and
# nothing else, on stdout. Run as root.
set -euo pipefail
exec 3>&1 1>&2
here=$(cd "$(dirname "$0")" && pwd)
cache=${WARD_CTR_CACHE:-${HOME:-/root}/.cache/ward-ctr}
key=$(cat "$here/image.sh" "$here/../debootstrap.sh" | sha256sum | cut -c1-16)
out="$cache/$key.tar"
if [ -f "$out" ]; then
    echo "$out" >&3
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "tests/container/image.sh: run as root (debootstrap)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ward-ctr-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
bash "$here/../debootstrap.sh" "$root" python3,procps,util-linux,uidmap,gcc,libc6-dev,passt,slirp4netns
chroot "$root" useradd -m -u 1000 -s /bin/sh worker
echo "worker:100000:65536" >"$root/etc/subuid"
echo "worker:100000:65536" >"$root/etc/subgid"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
mkdir -p "$cache"
tar -C "$root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out" >&3
