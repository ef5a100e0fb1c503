#!/usr/bin/env bash
# debootstrap a minimal Debian bookworm into ROOT from the host's own Debian mirror, with the
# packages PKGS (comma-separated) included; on failure, the end of its log. The VM and
# container tiers' images start here. Run as root.
# Usage: tests/debootstrap.sh ROOT PKGS
set -euo pipefail
root=${1:?usage: debootstrap.sh ROOT PKGS} pkgs=${2:?usage: debootstrap.sh ROOT PKGS}
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "tests/debootstrap.sh: no Debian mirror in the host's apt sources" >&2; exit 1; }
echo "tests/debootstrap.sh: debootstrap bookworm from $mirror into $root (once; minutes)" >&2
debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
