# Sourced by integration.sh: runs that cannot be lost or mixed up. Each check is named for what it
# protects: a run directory has one owner, a resume writes only into its own run, a language-model
# run resumes from the command the trainer prints, side features never cost the run, every accepted
# value runs or is refused up front, Ctrl-C under the launcher stops cleanly, text costs memory in
# proportion to its tokens.

run_safety_tests() {
    echo "== runs that cannot be lost (run directories, resume, side features, limits)"
    local d="$work/safety" lm=(--data shakespeare --warmup-steps 2 --eval-interval 10)
    mkdir -p "$d"
    "$trainer" train --model gpt "${lm[@]}" --max-steps 20 --run-dir "$d/A" > "$d/A.log" 2>&1
    "$trainer" train --model lstm "${lm[@]}" --max-steps 20 --run-dir "$d/B" > "$d/B.log" 2>&1
    expect "safety: a gpt and an lstm run to work with" "$d/B.log" test -e "$d/A/final.safetensors" -a -e "$d/B/final.safetensors"

    # A run directory has one owner: a second trainer on it is refused naming the first.
    "$trainer" train --model gpt "${lm[@]}" --max-steps 400 --run-dir "$d/owned" > "$d/owner.log" 2>&1 &
    local owner=$!
    for _ in $(seq 50); do [ -e "$d/owned/config.json" ] && break; sleep 0.2; done
    row "a second trainer on a run directory in use" 2 "is in use by another trainer (pid $owner" "$d/owned" \
        "$trainer" train --model gpt "${lm[@]}" --max-steps 400 --seed 2 --run-dir "$d/owned"
    wait "$owner"
    local owner_status=$?
    expect "safety: the run that owns the directory finishes as if alone (each step once in metrics.jsonl)" "$d/owner.log" \
        bash -c "[ $owner_status -eq 0 ] && grep -q '\"steps\" : 400,' '$d/owned/summary.json' && [ \$(wc -l < '$d/owned/metrics.jsonl') -eq 40 ]"

    # A resume writes only into the run it resumes.
    row "resume a checkpoint into another run's directory" 2 "holds another run: nothing was written" "$d/B" \
        "$trainer" train --resume "$d/A/checkpoints/step-00000010" --run-dir "$d/B" --max-steps 30
    "$trainer" train --resume "$d/A/checkpoints/step-00000010" --run-dir "$d/fork" --max-steps 30 > "$d/fork.log" 2>&1
    expect "safety: a checkpoint of another run starts a new run in an empty directory, its own left as it was" "$d/fork.log" \
        bash -c "grep -q 'starting a new run in' '$d/fork.log' && [ -e '$d/fork/final.safetensors' ] && [ ! -e '$d/A/checkpoints/step-00000030' ]"

    # `--resume latest --run-dir R` alone resumes any run, presets and language models alike.
    for m in A B; do
        "$trainer" train --resume latest --run-dir "$d/$m" --max-steps 30 > "$d/resume-$m.log" 2>&1
        expect "safety: --resume latest --run-dir alone resumes a language-model run ($m)" "$d/resume-$m.log" \
            grep -q '"steps" : 30,' "$d/$m/summary.json"
    done
    "$trainer" eval --checkpoint "$d/A" --split val > "$d/eval.log" 2>&1
    expect "safety: trainer eval reads a language-model run's own options" "$d/eval.log" grep -qE "^val: [0-9]+ tokens, loss [0-9.]+ per token" "$d/eval.log"
    row "an override that changes what the checkpoint holds" 2 "--n-embd 64 would change what the checkpoint holds" "$d/A" \
        "$trainer" train --resume latest --run-dir "$d/A" --n-embd 64 --max-steps 40
    printf 'abcdefghijklmnopqrstuvwxyz %.0s' $(seq 300) > "$d/az.txt"
    "$trainer" train --model gpt --data "text:$d/az.txt" --warmup-steps 2 --eval-interval 5 --max-steps 10 --run-dir "$d/az" > "$d/az.log" 2>&1
    tr 'a-z' 'A-Z' < "$d/az.txt" > "$d/AZ.txt" && cp "$d/AZ.txt" "$d/az.txt"
    row "a run resumed on text that tokenizes differently" 2 "tokenizes differently from the run's text" "$d/az" \
        "$trainer" train --resume latest --run-dir "$d/az" --max-steps 20

    # A resume from an earlier checkpoint of the same run starts another timeline: the newer
    # checkpoints are set aside (kept), so a later --resume latest follows the run that went on.
    "$trainer" train --model mlp --data synthetic --epochs 4 --run-dir "$d/rollback" > "$d/rollback.log" 2>&1
    local second
    second=$(ls -d "$d/rollback/checkpoints"/step-* | sed -n 1p)  # epoch 2's (3 and 4 follow it)
    "$trainer" train --resume "$second" --epochs 3 --lr 0.01 > "$d/rollback2.log" 2>&1
    expect "safety: a resume from an earlier checkpoint sets the newer ones aside, and latest follows the new timeline" "$d/rollback2.log" \
        bash -c "grep -q 'starts another timeline' '$d/rollback2.log' && [ \$(ls -d '$d/rollback/checkpoints'/abandoned-*/step-* | wc -l) -eq 2 ] && [ \$(ls -d '$d/rollback/checkpoints'/step-* | wc -l) -eq 2 ] && grep -q '\"epochs\" : 3' '$d/rollback/summary.json'"

    # Side features never cost the run.
    row "a --trace path that cannot be written" 2 "--trace /proc/ember/trace: cannot write a timeline there" "$d/no-trace" \
        "$trainer" train --model mlp --data synthetic --epochs 1 --trace /proc/ember/trace --run-dir "$d/no-trace"
    expect "safety: a bad --trace path leaves no run directory behind" /dev/null test ! -e "$d/no-trace"
    if [ "$(id -u)" -eq 0 ] && mkdir -p "$d/tiny" && mount -t tmpfs -o size=64k tmpfs "$d/tiny" 2>/dev/null; then
        head -c 56000 /dev/zero > "$d/tiny/filler" 2>/dev/null  # a few KB left: the trace fills it within steps
        "$trainer" train --model gpt "${lm[@]}" --max-steps 30 --trace "$d/tiny/trace" --trace-steps 30 --run-dir "$d/traced" > "$d/traced.log" 2>&1
        local status=$?
        umount "$d/tiny"
        expect "safety: a trace on a full disk is a warning; the run finishes and writes its results" "$d/traced.log" \
            bash -c "[ $status -eq 0 ] && grep -q 'warning: --trace' '$d/traced.log' && [ -e '$d/traced/final.safetensors' ] && [ -e '$d/traced/summary.json' ]"
    else
        echo "  skip  safety: a trace on a full disk (needs root to mount a small tmpfs)"
    fi

    # Every accepted value runs or is refused up front, in one line.
    row "--max-steps beyond any run" 2 "--max-steps 9223372036854775807 is beyond" "$d/big1" \
        "$trainer" train --model gpt "${lm[@]}" --max-steps 9223372036854775807 --run-dir "$d/big1"
    row "--block-size the memory cannot hold" 2 "needs about" "$d/big2" \
        "$trainer" train --model gpt "${lm[@]}" --block-size 65536 --run-dir "$d/big2"
    row "--n-embd the memory cannot hold" 2 "needs about" "$d/big3" \
        "$trainer" train --model gpt "${lm[@]}" --n-embd 65536 --run-dir "$d/big3"
    "$trainer" sample --checkpoint "$d/A" --temperature 1e-40 --tokens 20 > "$d/greedy.log" 2>&1
    local greedy=$?
    expect "safety: sampling at a temperature of 1e-40 is greedy, not NaN" "$d/greedy.log" bash -c "[ $greedy -eq 0 ] && [ \$(wc -c < '$d/greedy.log') -ge 20 ]"
    timeout 3 "$trainer" sample --checkpoint "$d/A" --tokens 1000000000 > "$d/stream.log" 2>&1
    expect "safety: a billion-token sample streams its text as it is made" "$d/stream.log" test "$(wc -c < "$d/stream.log")" -gt 200

    # Ctrl-C at a terminal reaches the whole foreground process group: the launcher's job stops
    # with a checkpoint and status 0.
    # (Started with SIGINT at its default and a process group of its own, as a terminal's
    # foreground job has: a background job of a script would ignore SIGINT.)
    python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); open(sys.argv[1], "w").write(str(os.getpid())); os.execvp(sys.argv[2], sys.argv[2:])' \
        "$d/pgid" launch/mpirun -n 2 "$trainer" train --model gpt "${lm[@]}" --max-steps 3000 --run-dir "$d/ctrl-c" > "$d/ctrl-c.log" 2>&1 &
    local job=$!
    for _ in $(seq 100); do grep -q "step " "$d/ctrl-c.log" 2>/dev/null && break; sleep 0.2; done
    kill -INT -- "-$(cat "$d/pgid")"
    ( sleep 60; kill -KILL -- "-$(cat "$d/pgid")" 2>/dev/null ) &
    local watchdog=$!
    wait "$job"
    local ctrl=$?
    kill "$watchdog" 2>/dev/null
    expect "safety: Ctrl-C under launch/mpirun stops with a checkpoint, a message and status 0" "$d/ctrl-c.log" \
        bash -c "[ $ctrl -eq 0 ] && grep -q 'stopping on a signal: checkpoint written' '$d/ctrl-c.log' && ls -d '$d/ctrl-c/checkpoints'/step-* >/dev/null"

    # Text costs memory in proportion to its tokens: 50 MB of text trains in under 700 MB.
    python3 -c "
import random; random.seed(1); words = ['the', 'of', 'and', 'to', 'in', 'a', 'is', 'that', 'for', 'it', 'as', 'was', 'with']
open('$d/big.txt', 'w').write(' '.join(random.choice(words) for _ in range(11_000_000)))"
    /usr/bin/time -f "peak_rss_kb=%M" "$trainer" train --model gpt --data "text:$d/big.txt" --max-steps 5 --eval-interval 5 --warmup-steps 1 \
        --val-fraction 0.001 --test-fraction 0 --run-dir "$d/big" > "$d/big.log" 2>&1
    local rss
    rss=$(grep -o 'peak_rss_kb=[0-9]*' "$d/big.log" | cut -d= -f2)
    expect "safety: 50 MB of text trains in under 700 MB of memory (peak ${rss:-?} KB)" "$d/big.log" test "${rss:-999999999}" -lt 700000
    rm -f "$d/big.txt"
}
