# Sourced by launch/test and launch/lib/other-cpus.sh: programs on qemu-user's emulated older CPUs.

# ember_qemu_prepare: builds launch/lib/qemu-fma.c for ember_qemu, once, where a compiler is at
# hand (without it the same runs happen, slower on Intel hosts). Call before running any at once.
ember_qemu_prepare() {
    local shim=.build/qemu-fma.so
    [ -f "$shim" ] && [ "$shim" -nt launch/lib/qemu-fma.c ] && return 0
    mkdir -p .build
    { clang -shared -fPIC -o "$shim" launch/lib/qemu-fma.c || gcc -shared -fPIC -o "$shim" launch/lib/qemu-fma.c; } 2> /dev/null \
        || rm -f "$shim"
}

# ember_qemu CPU COMMAND...: COMMAND on the emulated CPU (Haswell-noTSX, Nehalem), qemu itself
# running with the FMA helpers of launch/lib/qemu-fma.c when they were built.
ember_qemu() {
    local cpu=$1 shim="$PWD/.build/qemu-fma.so"
    shift
    if [ -f "$shim" ]; then
        LD_PRELOAD="$shim" qemu-x86_64 -U LD_PRELOAD -cpu "$cpu" "$@"
    else
        qemu-x86_64 -cpu "$cpu" "$@"
    fi
}
