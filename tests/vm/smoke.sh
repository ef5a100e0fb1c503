#!/usr/bin/env bash
# The VM tier: boot the Debian 12 guest (kernel 6.1, systemd, cgroup v2) and run
# guest-smoke.sh there with the ward binary under test. Run as root.
# Usage: tests/vm/smoke.sh PATH/TO/ward
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
share=$(mktemp -d "${TMPDIR:-/tmp}/ward-vm-share.XXXXXX")
trap 'rm -rf "$share"' EXIT
install -m 0755 "$1" "$share/ward"
install -m 0644 "$here/guest-smoke.sh" "$share/guest-test.sh"
chmod 0755 "$share"
bash "$here/run.sh" "$share"
