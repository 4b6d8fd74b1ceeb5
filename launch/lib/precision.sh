# Sourced by integration.sh: bf16 mixed precision (--precision bf16). A two-rank run trains and
# says which units multiply (AMX where the CPU has it); --deterministic --precision bf16 gives
# bitwise the same weights on 1, 2, 3 and 4 ranks; a CPU without bfloat16 units is refused in
# one line (checked where it can be), and so is oneDNN capped below them (checked everywhere);
# --reduce-dtype bf16 (gradients travel in bfloat16; needs no bfloat16 units): MPI's bfloat16 sum
# gives the bits of the threads' one on two ranks, three ranks train, a sharded step is refused.

run_precision_tests() {
    echo "== precision: bf16 products, float32 everything else"
    local d="$work/precision"
    mkdir -p "$d"
    run_reduce_dtype_checks "$d"
    # Any CPU: with oneDNN capped below its bfloat16 kernels, bf16 is refused, not emulated slowly.
    row "--precision bf16 with oneDNN capped at AVX2 (DNNL_MAX_CPU_ISA)" 2 "--precision bf16" "$d/capped" \
        env DNNL_MAX_CPU_ISA=AVX2 "$trainer" train --model mlp --data synthetic --epochs 1 --precision bf16 --run-dir "$d/capped"
    if ! grep -qE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
        row "--precision bf16 on a CPU without bfloat16 units" 2 "--precision bf16 needs a CPU with bfloat16 units" "$d/refused" \
            "$trainer" train --model mlp --data synthetic --epochs 1 --precision bf16 --run-dir "$d/refused"
        echo "  skip  precision: the bf16 runs (this CPU has no AVX512_BF16 or AMX)"
        return 0
    fi
    launch/mpirun -n 2 "$trainer" train --model gpt --max-steps 40 --eval-interval 20 --warmup-steps 5 --precision bf16 \
        --run-dir "$d/gpt" > "$d/gpt.log" 2>&1
    "$trainer" inspect "$d/gpt" > "$d/gpt-inspect.log" 2>&1
    expect "precision: mpirun -n 2 gpt --precision bf16 trains, naming the bfloat16 units; checkpoints keep float32 weights; summary.json and inspect name the precision" "$d/gpt.log" \
        bash -c "grep -qE '^precision: bf16 products on (amx|avx512_bf16) bfloat16 units' '$d/gpt.log' && grep -q 'step 40/40  train loss' '$d/gpt.log' && grep -q 'F32' '$d/gpt-inspect.log' && grep -q 'model gpt, optimizer adamw, data shakespeare, precision bf16$' '$d/gpt-inspect.log' && grep -q '\"precision\" : \"bf16\"' '$d/gpt/summary.json'"
    expect "precision: the start-up line gives the bf16 products' measured speed against float32, and warns exactly when it is below 1" "$d/gpt.log" \
        bf16_speed_reported "$d/gpt.log"
    if grep -q amx_bf16 /proc/cpuinfo && [ -z "${DNNL_MAX_CPU_ISA:-}" ]; then
        # The bf16 speed targets assume AMX wherever the CPU has it: a fallback to AVX512_BF16
        # (oneDNN not allowed the tiles, say) would halve the products' speed without an error.
        expect "precision: on this AMX CPU the bf16 products run on AMX tiles" "$d/gpt.log" \
            grep -q '^precision: bf16 products on amx bfloat16 units' "$d/gpt.log"
    fi
    local det=(--model mlp --dropout 0.2 --data synthetic --synthetic-samples 600 --epochs 2 --deterministic --global-batch-size 48 --precision bf16)
    "$trainer" train "${det[@]}" --run-dir "$d/det1" > "$d/det1.log" 2>&1
    local runs=("$d/det1") n
    for n in 2 3 4; do
        launch/mpirun -n "$n" "$trainer" train "${det[@]}" --run-dir "$d/det$n" > "$d/det$n.log" 2>&1
        runs+=("$d/det$n")
    done
    expect "precision: --deterministic --precision bf16 gives bitwise the same weights on 1, 2, 3 and 4 ranks" "$d/det4.log" \
        bash -c 'for r in "${@:2}"; do cmp -s "$1/final.safetensors" "$r/final.safetensors" || exit 1; done' _ "${runs[@]}"
    "$trainer" train --model mlp --data synthetic --epochs 1 --run-dir "$d/fp32" > /dev/null 2>&1
    "$trainer" train --model mlp --data synthetic --epochs 1 --precision bf16 --run-dir "$d/bf16" > /dev/null 2>&1
    expect "precision: bf16 products change the bits (the operands really are rounded)" /dev/null \
        bash -c "! cmp -s '$d/fp32/final.safetensors' '$d/bf16/final.safetensors'"
}

run_reduce_dtype_checks() {
    local d="$1" m=(--model mlp --data synthetic --epochs 2 --reduce-dtype bf16)
    launch/mpirun -n 2 "$trainer" train "${m[@]}" --run-dir "$d/rd-mpi" > "$d/rd-mpi.log" 2>&1
    "$trainer" train "${m[@]}" --local-ranks 2 --run-dir "$d/rd-threads" > "$d/rd-threads.log" 2>&1
    expect "precision: --reduce-dtype bf16 on 2 ranks: MPI's bfloat16 sum gives the bits of the threads' (same weights), logged" "$d/rd-mpi.log" \
        bash -c "cmp -s '$d/rd-mpi/final.safetensors' '$d/rd-threads/final.safetensors' && grep -q 'in bfloat16 (half the bytes' '$d/rd-mpi.log' && grep -q 'share one node' '$d/rd-mpi.log'"
    launch/mpirun -n 2 "$trainer" train --model mlp --data synthetic --epochs 2 --no-shard-optimizer --run-dir "$d/rd-fp32" > /dev/null 2>&1
    expect "precision: --reduce-dtype bf16 changes the bits of a float32 exchange" /dev/null \
        bash -c "! cmp -s '$d/rd-mpi/final.safetensors' '$d/rd-fp32/final.safetensors'"
    launch/mpirun -n 3 "$trainer" train "${m[@]}" --run-dir "$d/rd-3" > "$d/rd-3.log" 2>&1
    expect "precision: --reduce-dtype bf16 on 3 ranks (a ring rounds each partial sum) trains to 100% validation accuracy" "$d/rd-3.log" \
        python3 -c "import json,sys; sys.exit(0 if json.load(open('$d/rd-3/summary.json'))['val_accuracy'] == 1.0 else 1)"
    row "--reduce-dtype bf16 with --shard-optimizer" 2 "--reduce-dtype bf16 cannot be combined with --shard-optimizer" "$d/rd-refused" \
        "$trainer" train --model mlp --data synthetic --epochs 1 --reduce-dtype bf16 --shard-optimizer --run-dir "$d/rd-refused"
}

# bf16_speed_reported LOG: "(R× float32's speed here)" on the precision line, and the "slower
# than fp32" warning if and only if R < 1 (Intel without AMX; AMX and AMD's AVX512_BF16 are faster).
bf16_speed_reported() {
    local ratio warned=0
    ratio=$(grep -oE "^precision: bf16 products on .*\(([0-9.]+)× float32's speed here\)" "$1" | grep -oE '[0-9.]+×' | tr -d '×')
    [ -n "$ratio" ] || return 1
    grep -q "^warning: --precision bf16 is slower than fp32 on this CPU" "$1" && warned=1
    awk -v r="$ratio" -v w="$warned" 'BEGIN { exit !((r < 1) == w) }'
}
