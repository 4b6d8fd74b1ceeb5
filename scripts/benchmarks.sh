#!/usr/bin/env bash
# Ember and PyTorch side by side on this machine, in one run (docs/benchmarks.md), then a chart of
# the ratios (docs/benchmarks.svg).
# Needs a release build (swift build -c release) and PyTorch (pip install torch).
#
# Ember runs as the machine is: its float32 products are oneDNN's, chosen from the CPU's features,
# whatever OPENBLAS_CORETYPE says (it touches float64 only). PyTorch runs with its own MKL/oneDNN.
set -uo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-500}
lm_steps=$((steps / 5))
out=${OUT:-.build/benchmarks.txt}
mkdir -p "$(dirname "$out")"
{
    echo "# matrix products of the models' shapes, GFLOP/s, one thread: oneDNN and OpenBLAS in one run"
    .build/release/trainer bench --products
    echo "# single process, one thread"
    .build/release/trainer bench --steps "$steps" --loader --phases --model seednet
    for m in mlp cnn; do .build/release/trainer bench --steps "$steps" --phases --model "$m"; done
    for m in gpt lstm; do .build/release/trainer bench --steps "$lm_steps" --phases --model "$m"; done
    python3 examples/pytorch/bench.py --steps "$steps"
    for m in gpt lstm; do python3 examples/pytorch/bench.py --model "$m" --steps "$lm_steps"; done
    echo "# bf16 autocast, one thread: trainer bench --precision bf16 against PyTorch's torch.autocast (bench.py --bf16)"
    for m in mlp cnn; do .build/release/trainer bench --steps "$steps" --phases --model "$m" --precision bf16; done
    for m in gpt lstm; do .build/release/trainer bench --steps "$lm_steps" --phases --model "$m" --precision bf16; done
    for m in mlp cnn; do python3 examples/pytorch/bench.py --model "$m" --steps "$steps" --bf16; done
    for m in gpt lstm; do python3 examples/pytorch/bench.py --model "$m" --steps "$lm_steps" --bf16; done
    echo "# two processes, one thread each"
    launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" --phases 2>/dev/null
    launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" --overlap 2>/dev/null | sed 's/^/forced /'
    launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" --no-shard-optimizer --phases 2>/dev/null | sed 's/^/unsharded /'
    launch/mpirun -n 2 .build/release/trainer bench --model cnn --steps "$((steps / 2))" 2>/dev/null
    launch/mpirun -n 2 .build/release/trainer bench --model gpt --steps "$lm_steps" 2>/dev/null
    python3 examples/pytorch/bench.py --model mlp --world 2 --steps "$steps" 2>/dev/null | grep world
    python3 examples/pytorch/bench.py --model cnn --world 2 --steps "$((steps / 2))" 2>/dev/null | grep world
    echo "# one process, two threads: a rank's threads share its products, attention's heads and activations"
    echo "# (against two ranks above; results bitwise those of one thread)"
    if [ "$(nproc)" -ge 2 ]; then
        for p in fp32 bf16; do .build/release/trainer bench --model gpt --steps "$lm_steps" --threads 2 --precision "$p" | sed 's/^/threads /'; done
    fi
    echo "# Adam in place of SGD (each model's optimizer step then weighs more)"
    .build/release/trainer bench --steps "$steps" --optimizer adam --phases | sed 's/^/adam /'
    python3 examples/pytorch/bench.py --steps "$steps" --optimizer adam | sed 's/^/adam /'
    launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" --optimizer adam 2>/dev/null | sed 's/^/adam /'
    launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" --optimizer adam --no-shard-optimizer 2>/dev/null | sed 's/^/adam unsharded /'
    python3 examples/pytorch/bench.py --model mlp --world 2 --steps "$steps" --optimizer adam 2>/dev/null | grep world | sed 's/^/adam /'
    echo "# two-rank scaling of mlp, five alternating rounds: one rank; two ranks with the defaults (step sharded,"
    echo "# transport tuned); two unsharded; two unsharded over Open MPI's transport alone, as before shared memory"
    echo "# (this host's speed drifts minute to minute)"
    rate() { grep -o 'samples_per_s=[0-9]*' | cut -d= -f2; }
    # two [mpirun options --] [bench options]
    two() {
        local mpi=()
        if [ "${1:-}" = "-x" ]; then mpi=("$1" "$2"); shift 3; fi
        launch/mpirun -n 2 "${mpi[@]}" .build/release/trainer bench --model mlp --steps 2000 "$@" 2>/dev/null | rate
    }
    for _ in 1 2 3 4 5; do
        one=$(.build/release/trainer bench --model mlp --steps 2000 | rate)
        default=$(two) unsharded=$(two --no-shard-optimizer) mpi=$(two -x EMBER_SHARED_MEMORY=0 -- --no-shard-optimizer)
        echo "$one $default" | awk '{printf "scaling mlp one=%d two=%d ratio=%.3f\n", $1, $2, $2 / $1}'
        echo "$one $unsharded" | awk '{printf "scaling-unsharded mlp one=%d two=%d ratio=%.3f\n", $1, $2, $2 / $1}'
        echo "$one $mpi" | awk '{printf "scaling-mpi mlp one=%d two=%d ratio=%.3f\n", $1, $2, $2 / $1}'
    done
    echo "# resident memory stays flat: peak after 1,000 and after 10,000 steps"
    for n in 1000 10000; do
        .build/release/trainer bench --model mlp --steps "$n" | sed "s/^/memory steps=$n /"
    done
    echo "# gradient averaging against a raw MPI_Allreduce of the same 4 MiB"
    launch/mpirun -n 2 .build/release/trainer bench --model seednet --steps 10 --allreduce 2>/dev/null | grep allreduce
} | tee "$out"
python3 scripts/plot_benchmarks.py "$out" docs/benchmarks.svg && echo "chart: docs/benchmarks.svg"
