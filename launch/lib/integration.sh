# Multi-process tests of the built trainer, run by launch/test after the unit tests: real mpirun
# worlds, a killed rank, interrupt-and-resume, a corrupt checkpoint, and bad input.
# Prints one line per check and ends with "N passed, M failed".

trainer=.build/release/trainer
source "$(dirname "${BASH_SOURCE[0]}")/bad-input.sh"
source "$(dirname "${BASH_SOURCE[0]}")/slurm.sh"
source "$(dirname "${BASH_SOURCE[0]}")/run-safety.sh"
source "$(dirname "${BASH_SOURCE[0]}")/own-model.sh"
source "$(dirname "${BASH_SOURCE[0]}")/precision.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pretrained.sh"
source "$(dirname "${BASH_SOURCE[0]}")/qemu.sh"
source "$(dirname "${BASH_SOURCE[0]}")/other-cpus.sh"
source "$(dirname "${BASH_SOURCE[0]}")/docs.sh"
work=$(mktemp -d /tmp/ember-integration.XXXXXX)
passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); echo "  ok    $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "  FAIL  $1"; [ -n "${2:-}" ] && sed 's/^/        /' "$2" | tail -n 15; return 0; }

# check NAME CONDITION-COMMAND... [-- LOG]: runs the condition, records the result.
expect() {
    local name="$1" log="$2"; shift 2
    if "$@"; then pass "$name"; else fail "$name" "$log"; fi
}

has() { grep -q -- "$2" "$1"; }
# rank_pid R PATTERN: the process of MPI rank R among those matching PATTERN.
rank_pid() {
    local pid
    for pid in $(pgrep -f "$2"); do
        tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$pid"; return; }
    done
}
no_crash() { ! grep -qE "Fatal error|Backtrac|Program crashed|Stack dump" "$1"; }
json_key() { python3 -c "import json,sys; d=json.load(open('$1')); sys.exit(0 if d.get('$2') is not None else 1)"; }

# training under real mpirun equals one process; language models; small jobs; the benchmark tool
check_launchers() {
    echo "== launchers: training under real mpirun equals one process; language models; small jobs; the benchmark tool"
    # 1. Data-parallel training equals single-process training under real MPI: power-of-two
    # worlds (gradients prescaled, the allreduce sums) and three ranks (averaged after the sum),
    # with the whole optimizer step on every rank and sharded (ring reduce-scatter, allgather).
    for n in 2 3 4; do
        launch/mpirun -n "$n" "$trainer" check-ddp > "$work/ddp$n.log" 2>&1
        expect "mpirun -n $n: DDP equals single-process training (SGD momentum, Adam; weights and optimizer state; step sharded or not; ddp.step or PyTorch's plain loop), replicas identical" "$work/ddp$n.log" \
            bash -c "[ \$(grep -c PASS '$work/ddp$n.log') -eq 8 ] && ! grep -q FAIL '$work/ddp$n.log'"
    done

    # Two ranks tune the transport (both above); more use Open MPI's alone unless shared memory
    # is asked for: check both ways with three.
    launch/mpirun -n 3 -x EMBER_SHARED_MEMORY=1 "$trainer" check-ddp > "$work/ddp3-shm.log" 2>&1
    expect "EMBER_SHARED_MEMORY=1 mpirun -n 3: DDP equals single-process training through shared memory" "$work/ddp3-shm.log" \
        bash -c "[ \$(grep -c PASS '$work/ddp3-shm.log') -eq 8 ] && ! grep -q FAIL '$work/ddp3-shm.log'"

    # Two ranks switch transports as the tuner measures, which is only allowed because both give
    # bitwise the same training (a + b either way), sharded step (mlp) or not (cnn).
    for model in mlp cnn; do
        for v in 0 1; do
            launch/mpirun -n 2 -x EMBER_SHARED_MEMORY=$v "$trainer" train --model $model --data synthetic --epochs 2 \
                --run-dir "$work/transport-$model-$v" > "$work/transport-$model-$v.log" 2>&1
        done
        expect "two ranks, $model: shared memory and Open MPI's transport train to bitwise the same weights" "$work/transport-$model-1.log" \
            cmp -s "$work/transport-$model-0/final.safetensors" "$work/transport-$model-1/final.safetensors"
    done

    # Shared memory capped (EMBER_SHARED_MEMORY_LIMIT): the first buckets in shared segments, the
    # rest in ordinary memory over MPI, in one job.
    launch/mpirun -n 2 -x EMBER_SHARED_MEMORY=1 -x EMBER_SHARED_MEMORY_LIMIT=8192 "$trainer" check-ddp > "$work/ddp2-capped.log" 2>&1
    expect "shared memory capped at 8 KiB: some buckets shared, the others over MPI, still equal to one process" "$work/ddp2-capped.log" \
        bash -c "[ \$(grep -c PASS '$work/ddp2-capped.log') -eq 8 ] && ! grep -q FAIL '$work/ddp2-capped.log'"

    # 1b. A sharded optimizer step, checkpointed and resumed (its Adam state gathered into the
    # checkpoint), ends bitwise where the unsharded, uninterrupted run ends.
    local sharding=(--model mlp --data synthetic --optimizer adam --lr 0.002 --schedule none)
    launch/mpirun -n 2 "$trainer" train "${sharding[@]}" --epochs 4 --no-shard-optimizer --run-dir "$work/unsharded" > "$work/unsharded.log" 2>&1
    launch/mpirun -n 2 "$trainer" train "${sharding[@]}" --epochs 2 --shard-optimizer --run-dir "$work/sharded" > "$work/sharded.log" 2>&1
    launch/mpirun -n 2 "$trainer" train --resume latest --epochs 4 --run-dir "$work/sharded" >> "$work/sharded.log" 2>&1
    expect "--shard-optimizer: checkpoint, resume, and final weights bitwise equal to the unsharded run" "$work/sharded.log" \
        bash -c "grep -q 'optimizer step sharded' '$work/sharded.log' && cmp -s '$work/unsharded/final.safetensors' '$work/sharded/final.safetensors'"

    # 1c. A language model (--model gpt) on the bundled Shakespeare under mpirun: training by
    # steps, validation on the whole split, a sample that continues the prompt; and the same
    # run as threads gives bitwise the same weights.
    local lm=(--model gpt --n-layer 2 --n-embd 32 --n-head 2 --max-steps 40 --eval-interval 20 --warmup-steps 5 --batch-size 6)
    launch/mpirun -n 2 "$trainer" train "${lm[@]}" --run-dir "$work/lm" > "$work/lm.log" 2>&1
    expect "mpirun -n 2, gpt on Shakespeare: 40 steps, validation every 20 with loss per token and perplexity, tokens/s" "$work/lm.log" \
        bash -c "grep -q 'step 40/40  train loss' '$work/lm.log' && grep -q 'val_perplexity' '$work/lm.log' && grep -q 'tokens/s' '$work/lm.log' && [ \$(wc -l < '$work/lm/metrics.jsonl') -eq 2 ]"
    "$trainer" train "${lm[@]}" --local-ranks 2 --run-dir "$work/lm-threads" > "$work/lm-threads.log" 2>&1
    expect "gpt: two ranks as threads train to bitwise the weights of two mpirun ranks" "$work/lm-threads.log" \
        cmp -s "$work/lm/final.safetensors" "$work/lm-threads/final.safetensors"
    "$trainer" sample --checkpoint "$work/lm" --prompt "ROMEO:" --tokens 80 --seed 3 > "$work/lm-sample.log" 2>&1
    expect "trainer sample: continues the prompt with 80 characters from the run's tokenizer" "$work/lm-sample.log" \
        bash -c "head -c 6 '$work/lm-sample.log' | grep -q 'ROMEO:' && [ \$(wc -c < '$work/lm-sample.log') -ge 86 ] && ! grep -q error '$work/lm-sample.log'"

    local lstm=(--model lstm --n-embd 16 --hidden-size 32 --max-steps 20 --eval-interval 10 --warmup-steps 2 --batch-size 6)
    launch/mpirun -n 2 "$trainer" train "${lstm[@]}" --run-dir "$work/lstm" > "$work/lstm.log" 2>&1
    "$trainer" train "${lstm[@]}" --local-ranks 2 --run-dir "$work/lstm-threads" > "$work/lstm-threads.log" 2>&1
    expect "lstm: two ranks as threads train to bitwise the weights of two mpirun ranks (recurrent weight packed once per sequence)" "$work/lstm-threads.log" \
        cmp -s "$work/lstm/final.safetensors" "$work/lstm-threads/final.safetensors"
    "$trainer" sample --checkpoint "$work/lstm" --prompt "JULIET:" --tokens 40 > "$work/lstm-sample.log" 2>&1
    expect "mpirun -n 2, lstm on Shakespeare: trains by steps and samples" "$work/lstm-sample.log" \
        bash -c "grep -q 'step 20/20  train loss' '$work/lstm.log' && head -c 7 '$work/lstm-sample.log' | grep -q 'JULIET:' && [ \$(wc -c < '$work/lstm-sample.log') -ge 47 ]"

    # 2. Small jobs: one process, 2 and 4 ranks.
    "$trainer" train --epochs 1 --run-dir "$work/single" > "$work/single.log" 2>&1
    expect "single process: cnn on the bundled MNIST subset writes summary.json with test_accuracy" "$work/single.log" \
        json_key "$work/single/summary.json" test_accuracy
    "$trainer" eval --checkpoint "$work/single" > "$work/eval.log" 2>&1
    expect "trainer eval: a checkpoint's test accuracy" "$work/eval.log" grep -qE "^test: [0-9]+ samples, loss [0-9.]+, accuracy 0\.[0-9]+" "$work/eval.log"
    "$trainer" inspect "$work/single/final.safetensors" > "$work/inspect.log" 2>&1
    expect "trainer inspect: tensors of final.safetensors with PyTorch key names" "$work/inspect.log" grep -q "0.weight" "$work/inspect.log"
    "$trainer" train --local-ranks 3 --model mlp --data synthetic --epochs 1 --run-dir "$work/local3" > "$work/local3.log" 2>&1
    expect "--local-ranks 3: three ranks as threads of one process" "$work/local3.log" grep -q '"world_size" : 3' "$work/local3/summary.json"
    for n in 2 4; do
        launch/mpirun -n "$n" "$trainer" train --model mlp --data synthetic --epochs 2 --run-dir "$work/mpi$n" > "$work/mpi$n.log" 2>&1
        expect "mpirun -n $n: training run completes with world_size $n" "$work/mpi$n.log" \
            grep -q "\"world_size\" : $n" "$work/mpi$n/summary.json"
    done
    expect "start-up check: ranks and nodes, product threads against cores, and one executable, configuration and weights on every rank" "$work/mpi2.log" \
        bash -c "grep -q 'start-up check: 2 ranks on 1 node (2 on this one), 1 product thread per rank on' '$work/mpi2.log' && grep -q 'the same on every rank' '$work/mpi2.log'"
    expect "start-up log: what the products run on (library and instruction set), never a silent fallback" "$work/mpi2.log" \
        grep -qE "^products: (onednn|openblas):[A-Za-z0-9_]+ \(float64: openblas:[A-Za-z0-9_]+\), 1 thread per rank$" "$work/mpi2.log"
    launch/mpirun -n 1 "$trainer" train --model mlp --data synthetic --epochs 1 --run-dir "$work/mpmd" : \
        -n 1 "$trainer" train --model mlp --data synthetic --epochs 2 --run-dir "$work/mpmd" > "$work/mpmd.log" 2>&1
    status=$?
    expect "start-up check: ranks started with other options are named, and nothing is written" "$work/mpmd.log" \
        bash -c "[ $status -eq 2 ] && grep -q 'rank 1 has another configuration than rank 0' '$work/mpmd.log' && [ ! -e '$work/mpmd' ]"

    # 2b. The benchmark tool: every model's line, phases, and the two-rank form (not timed).
    "$trainer" bench --steps 3 --warmup 1 --phases > "$work/bench.log" 2>&1
    expect "trainer bench: one line per model with samples/s, the products' share, speed and engine, and phase times; tokens/s for gpt and lstm" "$work/bench.log" \
        bash -c "[ \$(grep -cE '^(seednet|mlp|cnn|gpt|lstm) world=1 threads=1 samples_per_s=[0-9]+ step_ms=[0-9.]+ products_pct=[0-9.]+ products_gflops=[0-9.]+ peak_rss_mb=[0-9.]+ products=[a-z]+:[a-z0-9_]+' '$work/bench.log') -eq 5 ] && [ \$(grep -c 'phases_us forward=' '$work/bench.log') -eq 5 ] && [ \$(grep -cE '^(gpt|lstm) .*tokens_per_s=[0-9]+' '$work/bench.log') -eq 2 ]"
    launch/mpirun -n 2 "$trainer" bench --model mlp --steps 3 --warmup 1 > "$work/bench2.log" 2>&1
    expect "mpirun -n 2 trainer bench: global samples/s; overlap (off: ranks fill the cores), transport and sharding decided for the job" "$work/bench2.log" \
        grep -qE "^mlp world=2 .* overlap=off transport=auto sharded_step=on$" "$work/bench2.log"
    launch/mpirun -n 2 "$trainer" bench --model mlp --steps 3 --warmup 1 --deterministic --compare 1 > "$work/bench-compare.log" 2>&1
    expect "mpirun -n 2 trainer bench --deterministic --compare: both modes timed in one run, and their ratio" "$work/bench-compare.log" \
        bash -c "grep -q 'deterministic=on' '$work/bench-compare.log' && grep -qE '^mlp world=2 deterministic_ratio=[0-9.]+ default_samples_per_s=[0-9]+ deterministic_samples_per_s=[0-9]+ rounds=1$' '$work/bench-compare.log'"
    launch/mpirun -n 2 "$trainer" bench --model mlp --steps 3 --warmup 1 --no-shard-optimizer --optimizer adam > "$work/bench3.log" 2>&1
    expect "mpirun -n 2 trainer bench --no-shard-optimizer --optimizer adam" "$work/bench3.log" \
        grep -qE "^mlp world=2 .* sharded_step=off optimizer=adam$" "$work/bench3.log"
}

# --deterministic gives the same bits on any world size
check_determinism() {
    echo "== determinism: --deterministic gives the same bits on any world size"
    # 1d. --deterministic: one process, mpirun -n 2, 3, 4 and ranks as threads train to bitwise
    # the same weights and metrics (mlp with dropout; resnet-small with batch norm); a run stopped
    # with SIGTERM on two ranks and resumed on four ends with the uninterrupted run's bits.
    cat > "$work/same-metrics.py" <<'PY'
import json, sys
def load(p): return [{k: v for k, v in json.loads(l).items() if k != "epoch_s" and not k.endswith("_per_s")} for l in open(p)]
runs = [load(p) for p in sys.argv[1:]]
sys.exit(0 if all(r == runs[0] for r in runs) and runs[0] else 1)
PY
    local det=(--model mlp --dropout 0.2 --data synthetic --synthetic-samples 600 --epochs 3 --deterministic --global-batch-size 48)
    "$trainer" train "${det[@]}" --run-dir "$work/det1" > "$work/det1.log" 2>&1
    local det_runs=("$work/det1")
    for n in 2 3 4; do
        launch/mpirun -n "$n" "$trainer" train "${det[@]}" --run-dir "$work/det-mpi$n" > "$work/det-mpi$n.log" 2>&1
        "$trainer" train "${det[@]}" --local-ranks "$n" --run-dir "$work/det-threads$n" > "$work/det-threads$n.log" 2>&1
        det_runs+=("$work/det-mpi$n" "$work/det-threads$n")
    done
    expect "--deterministic, mlp with dropout: 1 process, mpirun -n 2/3/4 and 2/3/4 threads give bitwise equal weights and metrics" "$work/det-mpi4.log" \
        bash -c 'for r in "${@:2}"; do cmp -s "$1/final.safetensors" "$r/final.safetensors" || exit 1; done; python3 "'"$work"'/same-metrics.py" "${@/%//metrics.jsonl}"' _ "${det_runs[@]}"
    local detbn=(--model resnet-small --data synthetic --synthetic-samples 240 --epochs 1 --deterministic --global-batch-size 24)
    "$trainer" train "${detbn[@]}" --run-dir "$work/detbn1" > "$work/detbn1.log" 2>&1
    launch/mpirun -n 2 "$trainer" train "${detbn[@]}" --run-dir "$work/detbn2" > "$work/detbn2.log" 2>&1
    "$trainer" train "${detbn[@]}" --local-ranks 3 --run-dir "$work/detbn3" > "$work/detbn3.log" 2>&1
    launch/mpirun -n 4 "$trainer" train "${detbn[@]}" --run-dir "$work/detbn4" > "$work/detbn4.log" 2>&1
    expect "--deterministic, resnet-small (batch norm): 1 process, mpirun -n 2, 3 threads, mpirun -n 4 give bitwise equal weights and running statistics" "$work/detbn4.log" \
        bash -c "cmp -s '$work/detbn1/final.safetensors' '$work/detbn2/final.safetensors' && cmp -s '$work/detbn1/final.safetensors' '$work/detbn3/final.safetensors' && cmp -s '$work/detbn1/final.safetensors' '$work/detbn4/final.safetensors'"
    local detlong=(--model mlp --dropout 0.2 --data synthetic --synthetic-samples 600 --epochs 30 --deterministic --global-batch-size 48 --checkpoint-interval 0)
    "$trainer" train "${detlong[@]}" --run-dir "$work/det-whole" > "$work/det-whole.log" 2>&1
    launch/mpirun -n 2 "$trainer" train "${detlong[@]}" --run-dir "$work/det-split" > "$work/det-split.log" 2>&1 &
    job=$!
    for _ in $(seq 1 300); do [ -f "$work/det-split/metrics.jsonl" ] && [ "$(wc -l < "$work/det-split/metrics.jsonl")" -ge 3 ] && break; sleep 0.05; done
    kill -TERM "$job"
    wait "$job"
    launch/mpirun -n 4 "$trainer" train --resume latest --run-dir "$work/det-split" > "$work/det-resume.log" 2>&1
    expect "--deterministic: stopped by SIGTERM on 2 ranks mid-epoch, resumed on 4: bitwise the uninterrupted run's weights and metrics" "$work/det-resume.log" \
        bash -c "grep -q 'interrupted' '$work/det-split.log' && cmp -s '$work/det-whole/final.safetensors' '$work/det-split/final.safetensors' && python3 '$work/same-metrics.py' '$work/det-whole/metrics.jsonl' '$work/det-split/metrics.jsonl'"
}

# a rank killed mid-run; automatic restarts
check_faults() {
    echo "== faults: a rank killed mid-run; automatic restarts"
    # 3. A rank killed mid-run: the job ends within 5 s naming the lost rank; checkpoints survive; resume works.
    launch/mpirun -n 2 "$trainer" train --epochs 200 --run-dir "$work/kill" > "$work/kill.log" 2>&1 &
    local job=$!
    for _ in $(seq 1 300); do [ -d "$work/kill/checkpoints" ] && [ -n "$(ls "$work/kill/checkpoints")" ] && break; sleep 0.1; done
    local victim
    victim=$(pgrep -f "^$trainer train --epochs 200 --run-dir $work/kill" | tail -n 1)
    local start=$SECONDS
    kill -9 "$victim" 2>/dev/null
    wait "$job"; local status=$?
    local took=$((SECONDS - start))
    expect "killed rank: job ends within 5 s (took ${took}s) with a non-zero status" "$work/kill.log" \
        test "$took" -le 5 -a "$status" -ne 0
    expect "killed rank: the message names the lost rank" "$work/kill.log" grep -qE "rank 1 .*(exited|killed|Killed)" "$work/kill.log"
    expect "killed rank: no process is left behind" "$work/kill.log" bash -c "! pgrep -f '^$trainer train --epochs 200' >/dev/null"
    "$trainer" inspect "$work/kill" > "$work/kill-inspect.log" 2>&1
    expect "killed rank: the latest checkpoint verifies" "$work/kill-inspect.log" has "$work/kill-inspect.log" "checksums verified"
    launch/mpirun -n 2 "$trainer" train --resume latest --run-dir "$work/kill" --epochs 3 > "$work/kill-resume.log" 2>&1
    expect "killed rank: --resume latest continues to completion" "$work/kill-resume.log" has "$work/kill/summary.json" '"completed"'

    # One rank failing on its own ends the whole job (MPI_Abort), naming the rank and the reason.
    start=$SECONDS
    EMBER_INJECT_FAILURE=1:30 launch/mpirun -n 2 -x EMBER_INJECT_FAILURE "$trainer" train --epochs 5 --run-dir "$work/inject" > "$work/inject.log" 2>&1
    status=$?
    took=$((SECONDS - start))
    expect "a failure on one rank ends the job within 5 s (took ${took}s), naming the rank and reason" "$work/inject.log" \
        bash -c "[ $status -ne 0 ] && [ $took -le 5 ] && grep -q 'rank 1' '$work/inject.log' && grep -q 'injected failure' '$work/inject.log'"

    # A stopped (hung) rank: the others time out and name it, not themselves.
    launch/mpirun -n 2 "$trainer" train --epochs 200 --collective-timeout 4 --run-dir "$work/hang" > "$work/hang.log" 2>&1 &
    job=$!
    for _ in $(seq 1 300); do [ -d "$work/hang/checkpoints" ] && [ -n "$(ls "$work/hang/checkpoints")" ] && break; sleep 0.1; done
    victim=$(rank_pid 1 "^$trainer train --epochs 200 --collective-timeout 4 --run-dir $work/hang")
    start=$SECONDS
    kill -STOP "$victim" 2>/dev/null
    wait "$job"; status=$?
    took=$((SECONDS - start))
    expect "a stopped rank: the job ends after the collective timeout (took ${took}s), naming the stopped rank" "$work/hang.log" \
        bash -c "[ $status -ne 0 ] && [ $took -le 15 ] && grep -q 'not arrived: rank 1 ' '$work/hang.log'"
    kill -9 "$victim" 2>/dev/null

    # A full disk under MPI: the run ends within seconds with the cause, a good checkpoint stays,
    # metrics.jsonl holds whole lines only, no temporaries are left (a small tmpfs, when root).
    if [ "$(id -u)" -eq 0 ] && mkdir -p "$work/full" && mount -t tmpfs -o size=3M tmpfs "$work/full" 2>/dev/null; then
        start=$SECONDS
        launch/mpirun -n 2 "$trainer" train --model mlp --data synthetic --epochs 6 --run-dir "$work/full/run" > "$work/full.log" 2>&1
        status=$?
        took=$((SECONDS - start))
        expect "disk full under mpirun: ends within 10 s (took ${took}s), status 1, saying 'No space left on device', no crash trace" "$work/full.log" \
            bash -c "[ $status -eq 1 ] && [ $took -le 10 ] && grep -q 'No space left on device' '$work/full.log' && ! grep -qE 'Fatal error|Backtrac|Program crashed' '$work/full.log'"
        "$trainer" inspect "$work/full/run" > "$work/full-inspect.log" 2>&1
        expect "disk full: the last good checkpoint verifies and no temporary is left" "$work/full-inspect.log" \
            bash -c "grep -q 'checksums verified' '$work/full-inspect.log' && [ -z \"\$(find '$work/full/run' -name '.*tmp*')\" ]"
        expect "disk full: metrics.jsonl holds whole JSON lines only" "$work/full/run/metrics.jsonl" \
            python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$work/full/run/metrics.jsonl"
        umount "$work/full"
    else
        echo "  skip  disk full under mpirun (needs root and tmpfs mounts)"
    fi

    # 3b. Automatic restart: kill -9 one rank of a `launch/mpirun --max-restarts 2` job; it restarts
    # from the latest checkpoint and ends with the uninterrupted run's weights, bitwise. A failure
    # that repeats at the same point gives up. A traced run's timeline parses, with both ranks and
    # every kind of span.
    local rargs=(--model mlp --data synthetic --epochs 40 --schedule none)
    launch/mpirun -n 2 "$trainer" train "${rargs[@]}" --run-dir "$work/restart-whole" > "$work/restart-whole.log" 2>&1
    launch/mpirun --max-restarts 2 -n 2 "$trainer" train "${rargs[@]}" --run-dir "$work/restart" > "$work/restart.log" 2>&1 &
    job=$!
    for _ in $(seq 1 600); do [ "$(ls "$work/restart/checkpoints" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.05; done
    victim=$(rank_pid 1 "^$trainer train ${rargs[*]} --run-dir $work/restart")
    kill -9 "$victim" 2>/dev/null
    wait "$job"; status=$?
    expect "--max-restarts: a rank killed with SIGKILL, the job restarts from its checkpoint (saying why) and completes" "$work/restart.log" \
        bash -c "[ $status -eq 0 ] && grep -q 'killed by signal 9 (status 137); restart 1 of 2 from' '$work/restart.log' && grep -q '\"completed\"' '$work/restart/summary.json'"
    expect "--max-restarts: the final weights equal an uninterrupted run's, bitwise, and metrics.jsonl has each epoch once" "$work/restart.log" \
        bash -c "cmp -s '$work/restart-whole/final.safetensors' '$work/restart/final.safetensors' && [ \$(wc -l < '$work/restart/metrics.jsonl') -eq 40 ]"
    EMBER_INJECT_FAILURE=1:30 launch/mpirun --max-restarts 3 -n 2 -x EMBER_INJECT_FAILURE "$trainer" train "${rargs[@]}" --run-dir "$work/repeat" > "$work/repeat.log" 2>&1
    status=$?
    expect "--max-restarts: a failure that repeats at the same point gives up, saying so" "$work/repeat.log" \
        bash -c "[ $status -ne 0 ] && grep -q 'restart 1 of 3' '$work/repeat.log' && grep -q 'the failure repeats, not restarting' '$work/repeat.log' && ! grep -q 'restart 2 of 3' '$work/repeat.log'"
    launch/mpirun --max-restarts 2 -n 2 "$trainer" train --model vgg --run-dir "$work/bad-restart" > "$work/bad-restart.log" 2>&1
    status=$?
    expect "--max-restarts: a bad configuration is not restarted (status 2)" "$work/bad-restart.log" \
        bash -c "[ $status -eq 2 ] && ! grep -q 'restart 1' '$work/bad-restart.log'"
    launch/mpirun -n 2 "$trainer" train --model mlp --data synthetic --epochs 2 --trace "$work/trace" --trace-steps 40 --run-dir "$work/traced" > "$work/traced.log" 2>&1
    expect "--trace: a two-rank timeline that parses, with both ranks and every span kind, and the summary table" "$work/traced.log" \
        python3 -c "
import json, sys
events = json.load(open('$work/trace/trace.json'))['traceEvents']
ranks = {e['pid'] for e in events}
kinds = {e.get('cat') for e in events if e['ph'] == 'X'}
want = {'data', 'forward', 'backward', 'reduce', 'wait', 'optimizer', 'sync', 'validation', 'checkpoint', 'step'}
sys.exit(0 if ranks == {0, 1} and want <= kinds and 'exposed_comm_ms' in open('$work/traced.log').read() else 1)"
    "$trainer" trace "$work/trace" > "$work/trace-cli.log" 2>&1
    expect "trainer trace DIR: merges and prints the table" "$work/trace-cli.log" grep -q "step_ms" "$work/trace-cli.log"
}

# SIGTERM and a bitwise resume; a corrupt checkpoint
check_restarts() {
    echo "== restarts: SIGTERM and a bitwise resume; a corrupt checkpoint"
    # 4. SIGTERM: final checkpoint and clean exit; resuming gives bitwise the uninterrupted weights.
    local args=(--epochs 12 --schedule none --checkpoint-interval 5)
    launch/mpirun -n 2 "$trainer" train "${args[@]}" --run-dir "$work/whole" > "$work/whole.log" 2>&1
    launch/mpirun -n 2 "$trainer" train "${args[@]}" --run-dir "$work/split" > "$work/split.log" 2>&1 &
    job=$!
    for _ in $(seq 1 300); do [ -f "$work/split/metrics.jsonl" ] && [ "$(wc -l < "$work/split/metrics.jsonl")" -ge 2 ] && break; sleep 0.05; done
    kill -TERM "$job"
    wait "$job"; status=$?
    expect "SIGTERM: a final checkpoint, a clean exit (status $status), and how to resume" "$work/split.log" \
        bash -c "[ $status -eq 0 ] && grep -q 'checkpoint written' '$work/split.log' && grep -q 'resume latest' '$work/split.log' && grep -q interrupted '$work/split/summary.json'"
    expect "SIGTERM: no crash trace" "$work/split.log" no_crash "$work/split.log"
    launch/mpirun -n 2 "$trainer" train --resume latest --run-dir "$work/split" > "$work/split-resume.log" 2>&1
    expect "SIGTERM then --resume: final weights are bitwise identical to the uninterrupted run" "$work/split-resume.log" \
        cmp -s "$work/whole/final.safetensors" "$work/split/final.safetensors"

    # 5. A corrupt checkpoint is detected; the previous good one is used with a warning.
    local newest
    newest=$(ls -d "$work/whole/checkpoints"/step-* | tail -n 1)
    head -c 100 "$newest/model.safetensors" > "$work/truncated" && mv "$work/truncated" "$newest/model.safetensors"
    "$trainer" train --resume latest --run-dir "$work/whole" --epochs 13 > "$work/corrupt.log" 2>&1
    expect "corrupt checkpoint: detected, reported, and the previous one resumed" "$work/corrupt.log" \
        bash -c "grep -q 'corrupt or truncated' '$work/corrupt.log' && grep -q 'previous good checkpoint' '$work/corrupt.log' && grep -q '\"epochs\" : 13' '$work/whole/summary.json'"
}

# bad input: a clear error, a non-zero status, nothing overwritten
check_bad_input() {
    echo "== bad-input: bad input: a clear error, a non-zero status, nothing overwritten"
    # The runs the table checks against (made by the launchers group when it ran first).
    [ -e "$work/single/summary.json" ] || "$trainer" train --epochs 1 --run-dir "$work/single" > "$work/single.log" 2>&1
    [ -e "$work/lm/final.safetensors" ] || "$trainer" train --model gpt --data shakespeare --max-steps 20 --eval-interval 10 --warmup-steps 2 \
        --run-dir "$work/lm" > "$work/lm.log" 2>&1
    # 6. Bad input: a clear error, a non-zero status, no crash trace, nothing overwritten.
    printf '1,2,3,4,5,6,7,8,9,10,0\n1,2,3,4,5,6,7,8,9,10,1\n' > "$work/ten.csv"
    printf '1,2,0\n3,4,7\n5,6,1\n' > "$work/labels.csv"
    printf '{"epocs": 3}\n' > "$work/typo.json"
    bad_input "missing data file" "nope.csv" "$trainer" train --data "csv:$work/nope.csv" --run-dir "$work/bad1"
    bad_input "unknown config key" "'epocs'" "$trainer" train --config "$work/typo.json" --run-dir "$work/bad2"
    bad_input "model and data shapes disagree" "28×28" "$trainer" train --data "csv:$work/ten.csv" --run-dir "$work/bad3"
    bad_input "label out of range" "label 7" "$trainer" train --data "csv:$work/labels.csv" --num-classes 3 --run-dir "$work/bad4"
    bad_input "invalid option combination" "--momentum" "$trainer" train --optimizer adam --momentum 0.9 --run-dir "$work/bad5"
    bad_input "more ranks than samples" "4 ranks but only" launch/mpirun -n 4 "$trainer" train --data "csv:$work/labels.csv" --model mlp --val-fraction 0 --test-fraction 0 --run-dir "$work/bad6"
    bad_input "bad EMBER_SHARED_MEMORY" "EMBER_SHARED_MEMORY must be 0" launch/mpirun -n 2 -x EMBER_SHARED_MEMORY=yes "$trainer" train --run-dir "$work/bad7"
    local before after
    before=$(find "$work/single" -type f -exec md5sum {} + | sort)
    bad_input "existing run directory" "not empty" "$trainer" train --run-dir "$work/single"
    after=$(find "$work/single" -type f -exec md5sum {} + | sort)
    expect "existing run directory: nothing in it changed" /dev/null test "$before" = "$after"
    run_bad_input_tests
}

# every example runs; a task of one's own through the training API
check_examples() {
    echo "== examples: every example runs; a task of one's own through the training API"
    # 7. Every example runs to completion.
    local example
    for example in AutogradBasics ArticleNet CustomLayer CustomOptimizer CustomLoss CustomActivation CustomConv CustomFunction CustomDataset Regularization ResNetSmall PretrainedFinetune; do
        timeout 300 ".build/release/$example" > "$work/example-$example.log" 2>&1
        expect "example $example runs" "$work/example-$example.log" test $? -eq 0
    done

    # 7b. A model and dataset of one's own through the training API (examples/custom-training): one
    # process, ranks as threads, and two MPI ranks stopped with SIGTERM mid-epoch and resumed,
    # bitwise equal to an uninterrupted run.
    local custom=.build/release/CustomTraining
    "$custom" --run-dir "$work/custom1" --epochs 20 > "$work/custom1.log" 2>&1
    expect "training API: a task of one's own in one process writes summary.json (with its own metric) and final.safetensors" "$work/custom1.log" \
        bash -c "grep -q '\"test_confidence\"' '$work/custom1/summary.json' && [ -f '$work/custom1/final.safetensors' ]"
    "$custom" --run-dir "$work/custom-threads" --epochs 20 --local-ranks 2 > "$work/custom-threads.log" 2>&1
    expect "training API: the same task as two threads" "$work/custom-threads.log" grep -q '"world_size" : 2' "$work/custom-threads/summary.json"
    launch/mpirun -n 2 "$custom" --run-dir "$work/custom-whole" > "$work/custom-whole.log" 2>&1
    launch/mpirun -n 2 "$custom" --run-dir "$work/custom-split" > "$work/custom-split.log" 2>&1 &
    job=$!
    for _ in $(seq 1 600); do [ -f "$work/custom-split/metrics.jsonl" ] && [ "$(wc -l < "$work/custom-split/metrics.jsonl")" -ge 30 ] && break; sleep 0.05; done
    kill -TERM "$job"
    wait "$job"; status=$?
    expect "training API under mpirun -n 2: SIGTERM mid-run writes a checkpoint and exits 0 (status $status)" "$work/custom-split.log" \
        bash -c "[ $status -eq 0 ] && grep -q 'interrupted' '$work/custom-split/summary.json'"
    launch/mpirun -n 2 "$custom" --run-dir "$work/custom-split" --resume latest > "$work/custom-resume.log" 2>&1
    expect "training API: resumed after SIGTERM, final weights bitwise equal to the uninterrupted run" "$work/custom-resume.log" \
        cmp -s "$work/custom-whole/final.safetensors" "$work/custom-split/final.safetensors"
}

# the cluster templates with their scheduler variables simulated
check_templates() {
    echo "== templates: the cluster templates with their scheduler variables simulated"
    # 8. The cluster templates run unchanged (their scheduler variables simulated).
    # Submitted from another directory: the run directory lands in the working directory, named
    # for the job; the repository is found from the script's path.
    local elsewhere="$work/elsewhere" repo_dir="$PWD"
    mkdir -p "$elsewhere"
    (cd "$elsewhere" && SLURM_NTASKS=2 SLURM_JOB_NAME="ci" SLURM_JOB_ID=4242 SLURM_SUBMIT_DIR="$elsewhere" \
        bash "$repo_dir/launch/slurm.sbatch" --model mlp --data synthetic --epochs 1) > "$work/slurm.log" 2>&1
    expect "launch/slurm.sbatch runs a 2-rank job submitted from another directory, into runs/<job>-<id> there" "$work/slurm.log" \
        grep -q '"world_size" : 2' "$elsewhere/runs/ci-4242/summary.json"
    (cd "$elsewhere" && SLURM_NTASKS=2 SLURM_JOB_NAME="ci" SLURM_JOB_ID=4242 bash "$repo_dir/launch/slurm.sbatch" --model mlp --data synthetic --epochs 1) > "$work/slurm-again.log" 2>&1
    expect "launch/slurm.sbatch: the same job again (a requeue) resumes its finished run and changes nothing" "$work/slurm-again.log" \
        bash -c "grep -q 'resumed from' '$work/slurm-again.log' && [ \$(wc -l < '$elsewhere/runs/ci-4242/metrics.jsonl') -eq 1 ]"
    (cd "$elsewhere" && EMBER_HOME=/nonexistent SLURM_NTASKS=2 bash "$repo_dir/launch/slurm.sbatch") > "$work/slurm-nohome.log" 2>&1
    expect "launch/slurm.sbatch: a wrong EMBER_HOME is a clear error" "$work/slurm-nohome.log" grep -q "cannot find the Ember repository" "$work/slurm-nohome.log"
    printf 'localhost\nlocalhost\n' > "$work/nodes"
    (cd "$elsewhere" && PBS_NODEFILE="$work/nodes" PBS_JOBNAME="ci" PBS_JOBID="77.server" PBS_O_WORKDIR="$repo_dir" \
        TRAINER_ARGS="--model mlp --data synthetic --epochs 1" bash "$repo_dir/launch/pbs.sh") > "$work/pbs.log" 2>&1
    expect "launch/pbs.sh runs a 2-rank job into runs/<job>-<id>" "$work/pbs.log" grep -q '"world_size" : 2' "runs/ci-77/summary.json"
    rm -rf "runs/ci-77"
}

# The groups of checks, each a function that `launch/test --only NAME` runs alone.
integration_groups=(launchers determinism faults restarts bad-input examples templates safety own-model precision pretrained other-cpus docs slurm)
integration_functions=(check_launchers check_determinism check_faults check_restarts check_bad_input check_examples check_templates run_safety_tests run_own_model_tests run_precision_tests run_pretrained_tests run_other_cpu_tests run_docs_tests run_slurm_tests)

# run_integration_tests [GROUP...]: the named groups (all by default), then the count.
run_integration_tests() {
    local wanted=("$@") i ran=0
    for i in "${!integration_groups[@]}"; do
        if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" ${integration_groups[$i]} "* ]]; then
            "${integration_functions[$i]}"
            ran=$((ran + 1))
        fi
    done
    if [ "$ran" -eq 0 ]; then
        echo "no such group: ${wanted[*]} (groups: ${integration_groups[*]})" >&2
        return 2
    fi
    echo
    if [ "$failed" -gt 0 ]; then
        echo "failed: ${failures[*]}"
        echo "logs kept in $work"
    else
        rm -rf "$work"
    fi
    echo "integration: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# bad_input NAME EXPECTED-TEXT COMMAND...: the command must fail with EXPECTED-TEXT, no trace.
bad_input() {
    local name="$1" text="$2"; shift 2
    local log="$work/bad-$(echo "$name" | tr ' ' '-').log"
    "$@" > "$log" 2>&1
    local status=$?
    expect "bad input, $name: non-zero status, clear message, no crash trace" "$log" \
        bash -c "[ $status -ne 0 ] && grep -qF -- \"$text\" '$log' && ! grep -qE 'Fatal error|Backtrac|Program crashed' '$log'"
}
