# Sourced by integration.sh: tests with a real Slurm (slurm-wlm 22.05 from apt) that the tests
# start themselves when run as root: a controller and two `slurmd -N` virtual nodes on this host,
# configured under the test's work directory (nothing in /etc is changed but munge's key, which
# its package makes). Every daemon started here is stopped at the end.

slurm_wait_job() {  # slurm_wait_job ID SECONDS: until the job has left the queue
    local i
    for ((i = 0; i < $2; i++)); do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0; sleep 1; done
    return 1
}
# slurm_alive PID: the process runs (a zombie waiting for its parent does not count).
slurm_alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
slurm_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }

slurm_start() {
    local d="$1" host
    host=$(hostname)
    mkdir -p "$d/state" "$d/log" "$d/spool-node1" "$d/spool-node2" "$d/tmp-node1" "$d/tmp-node2"
    cat > "$d/slurm.conf" <<CONF
ClusterName=ember-test
SlurmctldHost=$host
SlurmctldPort=16817
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool-%n
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd-%n.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd-%n.log
SlurmUser=root
SlurmdUser=root
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=5
DebugFlags=NO_CONF_HASH
NodeName=node1 NodeHostname=$host Port=17001 CPUs=2 State=UNKNOWN
NodeName=node2 NodeHostname=$host Port=17002 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
    # Each virtual node needs a temporary directory of its own (PMIx puts its client
    # directories there under names that do not include the node).
    local n
    for n in node1 node2; do sed "s|^DebugFlags=|TmpFS=$d/tmp-$n\nDebugFlags=|" "$d/slurm.conf" > "$d/slurm-$n.conf"; done
    export SLURM_CONF="$d/slurm.conf"
    slurm_started_munge=""
    local p running=""
    for p in $(pgrep -x munged); do slurm_alive "$p" && running=1; done
    if [ -z "$running" ]; then
        mkdir -p /run/munge
        chown munge:munge /run/munge 2>/dev/null
        [ -f /etc/munge/munge.key ] || mungekey -c
        munged --force > "$d/log/munged.log" 2>&1 && slurm_started_munge=$(cat /run/munge/munged.pid 2>/dev/null)
    fi
    slurmctld -f "$d/slurm.conf" && slurmd -f "$d/slurm-node1.conf" -N node1 && slurmd -f "$d/slurm-node2.conf" -N node2 || return 1
    local i
    for ((i = 0; i < 30; i++)); do
        [ "$(sinfo -h -o '%t' 2>/dev/null | sort -u)" = "idle" ] && return 0
        sleep 1
    done
    return 1
}

slurm_stop() {
    local d="$1" pidfile
    scancel --user=root 2>/dev/null
    for pidfile in "$d"/slurmd-*.pid "$d"/slurmctld.pid; do [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; done
    # They take a few seconds to shut down; after ten, they are killed.
    local i
    for ((i = 0; i < 20; i++)); do
        pgrep -f "slurm(ctl)?d -f $d" >/dev/null || break
        sleep 0.5
    done
    pkill -9 -f "slurm(ctl)?d -f $d" 2>/dev/null
    if [ -n "${slurm_started_munge:-}" ]; then
        kill "$slurm_started_munge" 2>/dev/null
        for ((i = 0; i < 20; i++)); do slurm_alive "$slurm_started_munge" || break; sleep 0.5; done
    fi
    unset SLURM_CONF
}

run_slurm_tests() {
    echo "== Slurm (a controller and two virtual nodes on this host)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "  skip  Slurm tests: they start slurmctld and slurmd, which needs root"
        return 0
    fi
    if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
        fail "Slurm: slurm-wlm and munge are installed (launch/test installs them as root)"
        return 0
    fi
    local d="$work/slurm" repo_dir="$PWD" jobs="$work/slurm-jobs"
    mkdir -p "$jobs"
    if ! slurm_start "$d"; then
        fail "Slurm: the controller and two virtual nodes start" "$d/log/slurmctld.log"
        slurm_stop "$d"
        return 0
    fi
    pass "Slurm: the controller and two virtual nodes start"

    # The template, submitted from another directory, with -D.
    local id
    id=$(sbatch --parsable -N1 -n2 -D "$jobs" -o "$jobs/template-%j.out" "$repo_dir/launch/slurm.sbatch" --model mlp --data synthetic --epochs 1)
    slurm_wait_job "$id" 120
    expect "Slurm: the template submitted from another directory with -D completes, its run in that directory" "$jobs/template-$id.out" \
        bash -c "[ '$(slurm_state "$id")' = COMPLETED ] && grep -q '\"world_size\" : 2' '$jobs/runs/ember-$id/summary.json'"

    # --export=NONE (many sites' default) still runs: the template exports the job's environment
    # to its steps itself.
    id=$(sbatch --parsable --export=NONE -N1 -n2 -D "$jobs" -o "$jobs/export-none-%j.out" "$repo_dir/launch/slurm.sbatch" --model mlp --data synthetic --epochs 1)
    slurm_wait_job "$id" 120
    expect "Slurm: the template under --export=NONE completes" "$jobs/export-none-$id.out" \
        bash -c "[ '$(slurm_state "$id")' = COMPLETED ] && grep -q '\"world_size\" : 2' '$jobs/runs/ember-$id/summary.json'"

    # A job reaching its time limit: the warning signal writes a checkpoint, the job ends
    # COMPLETED (not TIMEOUT or CANCELLED), and the same run submitted again completes.
    id=$(sbatch --parsable -N1 -n2 --time=1 --signal=B:USR1@40 -D "$jobs" --export=ALL,EMBER_RUN_DIR=runs/timed \
        -o "$jobs/timed-%j.out" "$repo_dir/launch/slurm.sbatch" --model cnn --epochs 500)
    slurm_wait_job "$id" 150
    expect "Slurm: a job at its time limit checkpoints on the warning and ends COMPLETED" "$jobs/timed-$id.out" \
        bash -c "[ '$(slurm_state "$id")' = COMPLETED ] && grep -q 'stopping on a signal' '$jobs/timed-$id.out'"
    local again
    again=$(sbatch --parsable -N1 -n2 -D "$jobs" --export=ALL,EMBER_RUN_DIR=runs/timed -o "$jobs/timed-again-%j.out" \
        "$repo_dir/launch/slurm.sbatch" --epochs 2)
    slurm_wait_job "$again" 120
    expect "Slurm: its resubmission resumes and completes" "$jobs/timed-again-$again.out" \
        bash -c "grep -q 'resumed from' '$jobs/timed-again-$again.out' && grep -q '\"completed\"' '$jobs/runs/timed/summary.json'"

    # The template on two nodes: -N 2 --ntasks-per-node=2 on the sbatch line gives 4 ranks (nothing in
    # the template overrides the user's task count).
    # (OMPI_MCA_btl from the environment: in --export a comma would end its value.)
    id=$(OMPI_MCA_btl=self,tcp sbatch --parsable -N2 --ntasks-per-node=2 -D "$jobs" -o "$jobs/two-node-template-%j.out" \
        "$repo_dir/launch/slurm.sbatch" --model mlp --data synthetic --epochs 1)
    slurm_wait_job "$id" 180
    expect "Slurm: sbatch -N 2 --ntasks-per-node=2 launch/slurm.sbatch runs 4 ranks on the two nodes" "$jobs/two-node-template-$id.out" \
        bash -c "[ '$(slurm_state "$id")' = COMPLETED ] && grep -q '4 ranks on 2 nodes' '$jobs/two-node-template-$id.out' && grep -q '\"world_size\" : 4' '$jobs/runs/ember-$id/summary.json'"

    # Direct launch: srun --mpi=pmix sizes the ranks itself; a trainer alone in a two-task
    # allocation is refused with the fix.
    srun --mpi=pmix -N1 -n2 "$repo_dir/$trainer" train --model mlp --data synthetic --epochs 1 --run-dir "$jobs/srun" > "$jobs/srun.log" 2>&1
    expect "Slurm: srun --mpi=pmix trains, one product thread per rank on this node's two cores" "$jobs/srun.log" \
        bash -c "grep -q '1 product thread per rank' '$jobs/srun.log' && grep -q '\"world_size\" : 2' '$jobs/srun/summary.json'"
    id=$(sbatch --parsable -N1 -n2 -o "$jobs/lone-%j.out" --wrap "$repo_dir/$trainer train --model mlp --data synthetic --run-dir $jobs/lone")
    slurm_wait_job "$id" 60
    expect "Slurm: a trainer started alone in a two-task allocation stops, naming srun --mpi=pmix" "$jobs/lone-$id.out" \
        bash -c "grep -q 'announced 2 tasks but MPI started a world of 1' '$jobs/lone-$id.out' && [ ! -e '$jobs/lone' ]"

    # Two nodes of two ranks train to the weights of one node of four, through Ember's two-level
    # reduction (shared memory within each node, MPI between) and through MPI alone. (Open MPI's
    # shared-memory transport cannot tell the two virtual nodes apart, so they talk over TCP.)
    OMPI_MCA_btl=self,tcp srun --mpi=pmix -N2 --ntasks-per-node=2 --overcommit "$repo_dir/$trainer" train --model mlp --data synthetic --epochs 2 \
        --run-dir "$jobs/two-nodes" > "$jobs/two-nodes.log" 2>&1
    OMPI_MCA_btl=self,tcp srun --mpi=pmix -N2 --ntasks-per-node=2 --overcommit "$repo_dir/$trainer" check-ddp > "$jobs/ddp-two-nodes.log" 2>&1
    expect "Slurm: 2 nodes × 2 ranks: DDP through the two-level reduction equals single-process training (step sharded or not)" "$jobs/ddp-two-nodes.log" \
        bash -c "[ \$(grep -c PASS '$jobs/ddp-two-nodes.log') -eq 8 ] && ! grep -q FAIL '$jobs/ddp-two-nodes.log'"
    EMBER_SHARED_MEMORY=0 OMPI_MCA_btl=self,tcp srun --mpi=pmix -N2 --ntasks-per-node=2 --overcommit "$repo_dir/$trainer" train --model mlp --data synthetic --epochs 2 \
        --run-dir "$jobs/two-nodes-mpi" > "$jobs/two-nodes-mpi.log" 2>&1
    OMPI_MCA_btl=self,tcp srun --mpi=pmix -N1 -n4 --overcommit "$repo_dir/$trainer" train --model mlp --data synthetic --epochs 2 \
        --run-dir "$jobs/one-node" > "$jobs/one-node.log" 2>&1
    cat > "$work/compare-weights.py" <<'PY'
# compare-weights.py A B: the largest difference of two safetensors files' float32 tensors,
# relative to each tensor's largest magnitude, must be at most 1e-5.
import json, struct, sys
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    out = {}
    for k, v in json.loads(data[8:8 + n]).items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b])
    return out
one, two = load(sys.argv[1]), load(sys.argv[2])
worst = max(max(abs(x - y) for x, y in zip(one[k], two[k])) / max(max(abs(x) for x in one[k]), 1e-30) for k in one)
print("largest relative difference", worst)
sys.exit(0 if set(one) == set(two) and worst <= 1e-5 else 1)
PY
    expect "Slurm: 2 nodes × 2 ranks train to the weights of 1 node × 4 ranks (within 1e-5), the start-up check seeing 2 nodes, gradients through shared memory within each node and MPI between" "$jobs/two-nodes.log" \
        bash -c "grep -q '4 ranks on 2 nodes' '$jobs/two-nodes.log' && grep -q 'shared memory within each node and MPI between nodes' '$jobs/two-nodes.log' && python3 '$work/compare-weights.py' '$jobs/one-node/final.safetensors' '$jobs/two-nodes/final.safetensors'"
    expect "Slurm: 2 nodes × 2 ranks with EMBER_SHARED_MEMORY=0 (MPI alone) train to the same weights (within 1e-5)" "$jobs/two-nodes-mpi.log" \
        bash -c "! grep -q 'shared memory within each node' '$jobs/two-nodes-mpi.log' && python3 '$work/compare-weights.py' '$jobs/one-node/final.safetensors' '$jobs/two-nodes-mpi/final.safetensors'"
    expect "Slurm: srun with 4 tasks on a 2-core node makes waiting ranks yield their cores (Open MPI would spin)" "$jobs/one-node.log" \
        grep -q 'OMPI_MCA_mpi_yield_when_idle=1' "$jobs/one-node.log"

    # --deterministic over srun on two nodes: bitwise the weights of one process.
    local det=(--model mlp --dropout 0.2 --data synthetic --synthetic-samples 600 --epochs 2 --deterministic --global-batch-size 48)
    "$repo_dir/$trainer" train "${det[@]}" --run-dir "$jobs/det-one" > "$jobs/det-one.log" 2>&1
    OMPI_MCA_btl=self,tcp srun --mpi=pmix -N2 --ntasks-per-node=2 --overcommit "$repo_dir/$trainer" train "${det[@]}" \
        --run-dir "$jobs/det-two-nodes" > "$jobs/det-two-nodes.log" 2>&1
    expect "Slurm: --deterministic on 2 nodes × 2 ranks: bitwise the weights of one process" "$jobs/det-two-nodes.log" \
        cmp -s "$jobs/det-one/final.safetensors" "$jobs/det-two-nodes/final.safetensors"

    slurm_stop "$d"
    expect "Slurm: every daemon the tests started is stopped" /dev/null bash -c "sleep 0.5; ! pgrep -f 'slurm(ctl)?d -f $d' >/dev/null && { [ -z '${slurm_started_munge:-}' ] || [ ! -e /proc/${slurm_started_munge:-0} ] || grep -q '^State:[[:space:]]*Z' /proc/${slurm_started_munge:-0}/status; }"
}
