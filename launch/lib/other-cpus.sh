# Sourced by integration.sh: the release trainer on emulated older CPUs (qemu-user). A gpt, an
# lstm and a cnn train three steps on a Haswell (AVX2 and FMA) and a Nehalem (SSE4.2, OpenBLAS
# forced to its Prescott kernels) and must reach the losses they reach natively (within 2e-4).
# The vectorised avx2 and baseline clones of Ember's own kernels exist only in optimised builds,
# which the unit tests (debug, also run on these CPUs) do not exercise.

# final_loss LOG: the train loss of a trainer log's last line ("done: ... train loss X, ...").
final_loss() { grep -oE '^done: .*train loss [0-9.]+' "$1" | grep -oE '[0-9.]+$'; }

# same_loss A B: the final train losses of two trainer logs agree within 2e-4 relative (a few
# units of the printed last digit; different kernels sum in different orders).
same_loss() {
    local a b
    a=$(final_loss "$1")
    b=$(final_loss "$2")
    [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 2e-4 * a) }'
}

# trained_like_native PREFIX CPU ISA: PREFIX-CPU.log ran its products on oneDNN's ISA kernels and
# ended at PREFIX-native.log's loss.
trained_like_native() {
    grep -q "products: onednn:$3" "$1-$2.log" && same_loss "$1-native.log" "$1-$2.log"
}

run_other_cpu_tests() {
    echo "== other CPUs: the release trainer on emulated older CPUs (qemu-x86_64)"
    if ! command -v qemu-x86_64 > /dev/null || [ "$(uname -m)" != x86_64 ]; then
        echo "  skip  other CPUs: no qemu-x86_64 here (apt-get install qemu-user)"
        return 0
    fi
    local d="$work/other-cpus" m
    mkdir -p "$d"
    ember_qemu_prepare
    for m in gpt lstm cnn; do
        local args=(train --model "$m" --max-steps 3 --warmup-steps 1 --eval-interval 3 --val-fraction 0.01 --batch-size 8)
        "$trainer" "${args[@]}" --run-dir "$d/$m-native" > "$d/$m-native.log" 2>&1
        ember_qemu Haswell-noTSX "$trainer" "${args[@]}" --run-dir "$d/$m-haswell" > "$d/$m-haswell.log" 2>&1 &
        OPENBLAS_CORETYPE=Prescott ember_qemu Nehalem "$trainer" "${args[@]}" --run-dir "$d/$m-nehalem" > "$d/$m-nehalem.log" 2>&1
        wait
        expect "other CPUs: $m trains on a Haswell (products=onednn:avx2) to its native loss" "$d/$m-haswell.log" \
            trained_like_native "$d/$m" haswell avx2
        expect "other CPUs: $m trains on a Nehalem (products=onednn:sse41, OpenBLAS Prescott) to its native loss" "$d/$m-nehalem.log" \
            trained_like_native "$d/$m" nehalem sse41
    done
}
