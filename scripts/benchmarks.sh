#!/usr/bin/env bash
# Ember and PyTorch side by side on this machine, in one run (docs/benchmarks.md).
# Needs a release build (swift build -c release) and PyTorch (pip install torch).
set -uo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-500}
echo "# single process, one thread"
.build/release/trainer bench --steps "$steps" --loader
python3 examples/pytorch/bench.py --steps "$steps"
echo "# two processes, one thread each"
launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" 2>/dev/null
launch/mpirun -n 2 .build/release/trainer bench --model mlp --steps "$steps" --no-overlap 2>/dev/null
launch/mpirun -n 2 .build/release/trainer bench --model cnn --steps "$((steps / 2))" 2>/dev/null
python3 examples/pytorch/bench.py --model mlp --world 2 --steps "$steps" 2>/dev/null | grep world
python3 examples/pytorch/bench.py --model cnn --world 2 --steps "$((steps / 2))" 2>/dev/null | grep world
echo "# gradient averaging against a raw MPI_Allreduce of the same 4 MiB"
launch/mpirun -n 2 .build/release/trainer bench --model seednet --steps 10 --allreduce 2>/dev/null | grep allreduce
