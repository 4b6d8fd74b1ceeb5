# Sourced by launch/run and launch/test: makes sure the system packages Ember builds against are
# installed (oneDNN for float32 matrix products, OpenBLAS for float64, OpenMPI for the distributed
# trainer).
ember_packages=(libopenblas-dev libdnnl-dev libopenmpi-dev openmpi-bin zlib1g-dev pkg-config)
# The tests also start a real Slurm (as root) and run the unit tests on emulated older CPUs
# (qemu-user): launch/test asks for these too.
ember_test_packages=(slurm-wlm munge time qemu-user)

# ember_install_deps [PACKAGE...]: the build's packages and any given, installed when missing.
ember_install_deps() {
    local missing=()
    for p in "${ember_packages[@]}" "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ember: missing system packages: ${missing[*]} (no apt-get here: install oneDNN, OpenBLAS and OpenMPI development files with your package manager)" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "ember: missing system packages: ${missing[*]}" >&2
        echo "ember: install them with:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "ember: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ember_require_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        echo "ember: swift is not on PATH; install Swift 5.9 or newer from swift.org" >&2
        return 1
    fi
}
