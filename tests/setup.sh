#!/usr/bin/env bash
# Prepare a Debian/Ubuntu host for ward's test suite. Run as root; idempotent.
#  - installs what building and testing need (libseccomp-dev, uidmap, bubblewrap, ...)
#  - creates the unprivileged test user (default ward-test) with /etc/subuid and /etc/subgid
#    ranges, because every integration test runs the launcher as that user
#  - makes /dev/net/tun usable by unprivileged users (0666, Debian's udev default) when a
#    machine without udev left it 0600, so slirp4netns and pasta can work
set -euo pipefail
user=${WARD_TEST_USER:-ward-test}

if [ "$(id -u)" != 0 ]; then
    echo "tests/setup.sh: run as root (it installs packages and creates the test user $user)" >&2
    exit 1
fi

pkgs=(build-essential pkg-config libseccomp-dev uidmap bubblewrap hyperfine python3 util-linux procps iproute2 slirp4netns passt)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
grep -q "^$user:" /etc/subuid 2>/dev/null || usermod --add-subuids 300000-365535 "$user"
grep -q "^$user:" /etc/subgid 2>/dev/null || usermod --add-subgids 300000-365535 "$user"

if [ -c /dev/net/tun ]; then
    mode=$(stat -c %a /dev/net/tun)
    if [ "$mode" != 666 ]; then
        echo "tests/setup.sh: /dev/net/tun was mode $mode; setting 0666 as udev does on Debian"
        chmod 0666 /dev/net/tun
    fi
fi
echo "tests/setup.sh: ready (test user $user, uid $(id -u "$user"))"
