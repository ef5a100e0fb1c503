#!/usr/bin/env bash
# Install what ward needs on a fresh Debian 12 / Ubuntu 22.04+ machine, build it, install it
# and run a real program in a sandbox. Run as root or as a user with sudo.
#   bash install.sh            installs to /usr/local/bin (root) or ~/.local/bin (user)
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

pkgs=(build-essential pkg-config libseccomp-dev uidmap)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install.sh: installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "install.sh: Rust's cargo is missing: install it with your package manager (apt-get install cargo) or rustup" >&2
    exit 1
fi

. scripts/build-env.sh
cargo build --release --locked --target "$WARD_TARGET" --bin ward
bin="target/$WARD_TARGET/release/ward"

if [ "$(id -u)" = 0 ]; then dest=/usr/local/bin; else dest="$HOME/.local/bin"; mkdir -p "$dest"; fi
install -m 0755 "$bin" "$dest/ward"
echo "install.sh: installed $dest/ward"

# A real sandboxed program, as an unprivileged user (root's sandbox would prove little).
run_as=()
if [ "$(id -u)" = 0 ]; then
    if id -u nobody >/dev/null 2>&1; then run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --); fi
fi
cd /tmp
"${run_as[@]}" "$dest/ward" run --no-workdir -- /bin/sh -c 'echo "hello from $(hostname): uid $(id -u), $(ls /proc | grep -c "^[0-9]") processes visible"'
echo "install.sh: ok. 'ward check' tells what else this host allows."
