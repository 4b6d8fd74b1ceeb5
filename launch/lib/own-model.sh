# Sourced by integration.sh: a model of one's own end to end, through a program of one's own
# (examples/custom-training's CustomTraining, Tests/MistakeInTask): its help and errors name it and
# list only a task's options, it evaluates and inspects its runs, the runs record the task's name,
# and a mistake in the model is one line per failing rank, after which the corrected program
# trains in the same run directory.

run_own_model_tests() {
    echo "== your own model end to end (a program of one's own)"
    local d="$work/own" p=.build/release/CustomTraining m=.build/release/MistakeInTask
    mkdir -p "$d"
    "$p" --help > "$d/help.log" 2>&1
    expect "own program: --help names the program and lists only a task's options" "$d/help.log" \
        bash -c "grep -q '^USAGE: CustomTraining \[train\]' '$d/help.log' && grep -q 'CustomTraining eval --checkpoint RUN' '$d/help.log' && grep -q -- '--epochs N' '$d/help.log' && ! grep -qE -- '--(model|data|n-layer|block-size) ' '$d/help.log'"
    row "own program given a preset's option" 2 "--model is an option of trainer's preset models; CustomTraining trains its own model" - \
        "$p" --model gpt --run-dir "$d/preset-flag"
    "$p" --epochs 3 --run-dir "$d/run" > "$d/train.log" 2>&1
    "$p" eval --checkpoint "$d/run" > "$d/eval.log" 2>&1
    local one
    one=$(cat "$d/eval.log")
    expect "own program: eval reports the run's validation and test loss and metrics" "$d/eval.log" \
        grep -qE "^val: loss [0-9.]+, accuracy [0-9.]+, confidence [0-9.]+$" "$d/eval.log"
    launch/mpirun -n 2 "$p" eval --checkpoint "$d/run" > "$d/eval2.log" 2>/dev/null
    expect "own program: eval under launch/mpirun -n 2 gives the same numbers (exact over ranks)" "$d/eval2.log" \
        test "$one" = "$(cat "$d/eval2.log")"
    "$p" inspect "$d/run" > "$d/inspect.log" 2>&1
    .build/release/trainer inspect "$d/run" >> "$d/inspect.log" 2>&1
    expect "own program and trainer inspect: the run records the task's name" "$d/inspect.log" \
        bash -c "[ \$(grep -c 'task spiral-net' '$d/inspect.log') -eq 2 ] && grep -q '\"model\" : \"spiral-net\"' '$d/run/summary.json'"
    row "trainer eval on a task's run" 2 "is of the task spiral-net, trained by a program of its own" "$d/run" \
        .build/release/trainer eval --checkpoint "$d/run"

    # A mistake in the model under the launcher: each failing rank's message once, in one line.
    launch/mpirun -n 2 "$m" --epochs 1 --run-dir "$d/mistake" > "$d/mistake.log" 2>&1
    local status=$?
    expect "own program: a shape mistake under launch/mpirun -n 2 is one line per rank, status 1, no backtrace" "$d/mistake.log" \
        bash -c "[ $status -eq 1 ] && [ \$(grep -c 'error: Linear(4 → 2) got input of shape \[32, 3\]' '$d/mistake.log') -eq 2 ] && grep -q '^\[rank 1\] error: Linear' '$d/mistake.log' && ! grep -qE 'Fatal error|Backtrac|Program crashed|Current stack trace' '$d/mistake.log'"
    MISTAKE_FIXED=1 launch/mpirun -n 2 -x MISTAKE_FIXED "$m" --epochs 1 --run-dir "$d/mistake" > "$d/fixed.log" 2>&1
    expect "own program: the corrected program then trains in the same run directory" "$d/fixed.log" \
        bash -c "[ $? -eq 0 ] && grep -q 'replacing what an earlier start' '$d/fixed.log' && [ -e '$d/mistake/final.safetensors' ]"
}
