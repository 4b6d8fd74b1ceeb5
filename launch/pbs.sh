#!/usr/bin/env bash
# PBS / Torque template: `qsub [-v TRAINER_ARGS="--epochs 30"] launch/pbs.sh`, from any directory.
# Sizes come from the allocation ($PBS_NODEFILE); edit the resource lines for your site.
#PBS -N ember
#PBS -l select=1:ncpus=2:mpiprocs=2
#PBS -l walltime=01:00:00
#PBS -j oe
#
# Environment (qsub -v NAME=value,...): EMBER_HOME (the repository, default: the submit
# directory, or this script's), EMBER_RUN_DIR (default: runs/<job name>-<job id>, a new run per
# job), EMBER_MAX_RESTARTS, TRAINER_ARGS.
set -uo pipefail

repo="${EMBER_HOME:-}"
for candidate in "${PBS_O_WORKDIR:-}" "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." 2>/dev/null && pwd)"; do
    [ -z "$repo" ] && [ -n "$candidate" ] && [ -x "$candidate/launch/mpirun" ] && repo="$candidate"
done
trainer="${repo:-.}/.build/release/trainer"
if [ -z "$repo" ]; then
    echo "pbs.sh: cannot find the Ember repository; submit from it, or with -v EMBER_HOME=/path/to/ember" >&2
    exit 2
fi
if [ ! -x "$trainer" ]; then
    echo "pbs.sh: $trainer is not built; run 'swift build -c release --product trainer' in $repo first" >&2
    exit 2
fi
cd "${PBS_O_WORKDIR:-$repo}"
ranks=$(wc -l < "$PBS_NODEFILE")
job_id="${PBS_JOBID:-local}"
run_dir="${EMBER_RUN_DIR:-runs/${PBS_JOBNAME:-ember}-${job_id%%.*}}"
# PBS sends SIGTERM before killing a job at its walltime: launch/mpirun passes it to every rank as
# SIGUSR1, so the trainer writes a final checkpoint; a requeued job (same id) resumes.
"$repo/launch/mpirun" --max-restarts "${EMBER_MAX_RESTARTS:-0}" -n "$ranks" --hostfile "$PBS_NODEFILE" "$trainer" train \
    --run-dir "$run_dir" --resume auto ${TRAINER_ARGS:-} &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
while true; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || exit "$status"
done
