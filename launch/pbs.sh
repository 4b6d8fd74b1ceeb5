#!/usr/bin/env bash
# PBS / Torque template: edit the #PBS lines, then `qsub launch/pbs.sh`
# (trainer options go in TRAINER_ARGS: qsub -v TRAINER_ARGS="--epochs 30" launch/pbs.sh).
#PBS -N ember
#PBS -l select=2:ncpus=8:mpiprocs=4
#PBS -l walltime=01:00:00
#PBS -j oe

set -euo pipefail
cd "${PBS_O_WORKDIR:-$(dirname "$0")/..}"
ranks=$(wc -l < "$PBS_NODEFILE")
run_dir="runs/pbs-${PBS_JOBNAME:-ember}"
resume=()
[ -d "$run_dir/checkpoints" ] && resume=(--resume latest)
# PBS sends SIGTERM before killing a job that reaches its walltime: pass it on so the trainer
# writes a final checkpoint; resubmitting this script resumes.
# Pass the batch system's SIGTERM on to mpirun (it forwards it to every rank) and wait for the
# final checkpoint.
set +e
# EMBER_MAX_RESTARTS=N (qsub -v EMBER_MAX_RESTARTS=2): restart from the latest checkpoint when
# a rank dies, at most N times (docs/cluster.md).
launch/mpirun --max-restarts "${EMBER_MAX_RESTARTS:-0}" -n "$ranks" --hostfile "$PBS_NODEFILE" .build/release/trainer train --run-dir "$run_dir" "${resume[@]}" ${TRAINER_ARGS:-} &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit $?' TERM
wait "$pid"
exit $?
