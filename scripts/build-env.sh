# Sourced by install.sh, tests/run.sh and benches/compare.sh: how the shipped ward binary is
# built. A static binary (glibc and libseccomp linked in) skips the dynamic loader at every
# sandbox start (see BENCHMARKS.md). WARD_DYNAMIC=1 builds a normal dynamic binary instead
# (then libseccomp updates from the distribution apply without rebuilding ward).
WARD_TARGET=$(rustc -vV | sed -n 's/^host: //p')
export WARD_TARGET
if [ "${WARD_DYNAMIC:-}" != 1 ]; then
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    export LIBSECCOMP_LINK_TYPE=static
    # where libseccomp-dev put libseccomp.a
    LIBSECCOMP_LIB_PATH=$(pkg-config --variable=libdir libseccomp 2>/dev/null || echo "/usr/lib/$(gcc -print-multiarch)")
    export LIBSECCOMP_LIB_PATH
fi
