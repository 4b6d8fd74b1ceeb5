# Sourced by integration.sh: what users get wrong, as a table. Every row runs the release-built
# trainer (or the API-mistakes program) and checks the exit status, that the message names the
# problem, that there is no crash trace, and that the run directory it names is as it was
# (absent when it did not exist). Files with damage of each kind are made here by python3.

# row NAME STATUS TEXT DIR COMMAND...: STATUS is the exact exit status wanted; DIR is a run
# directory that must not change ("-" for none).
row() {
    local name="$1" want="$2" text="$3" dir="$4"; shift 4
    local log="$work/row-$(echo "$name" | tr ' /' '--').log"
    local before="absent"
    [ "$dir" != "-" ] && [ -e "$dir" ] && before=$(find "$dir" -type f -exec md5sum {} + | sort)
    "$@" > "$log" 2>&1
    local status=$?
    local after="absent"
    [ "$dir" != "-" ] && [ -e "$dir" ] && after=$(find "$dir" -type f -exec md5sum {} + | sort)
    if [ "$status" -eq "$want" ] && grep -qF -- "$text" "$log" && no_crash "$log" && { [ "$dir" = "-" ] || [ "$before" = "$after" ]; }; then
        pass "bad input, $name: status $want, names the problem, run directory unchanged"
    else
        fail "bad input, $name: status $status (want $want), message '$text'" "$log"
        [ "$dir" != "-" ] && [ "$before" != "$after" ] && echo "        run directory $dir changed"
    fi
}

make_bad_files() {
    local d="$work/bad"
    mkdir -p "$d"
    python3 - "$d" <<'PY'
import json, os, struct, sys, gzip
d = sys.argv[1]
def st(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data
def write(name, b):
    with open(os.path.join(d, name), "wb") as f: f.write(b)
write("huge-header.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}")
write("overflow-offsets.safetensors", st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 2**62]}}, b"\0" * 8))
write("negative-shape.safetensors", st({"w": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}}, b"\0" * 16))
write("overflow-shape.safetensors", st({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, b"\0" * 16))
write("overlap.safetensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12))
def npy(shape_text, body=b"", major=1):
    header = ("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape_text).encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    size = struct.pack("<H", len(header)) if major == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([major, 0]) + size + header + body
for name, x in {"npy-negative": npy("(-3, 2)"), "npy-giant": npy("(4294967296, 4294967296)"),
                "npy-short-v2": b"\x93NUMPY\x02\x00\x10\x00\x00"}.items():
    os.makedirs(os.path.join(d, name), exist_ok=True)
    write(os.path.join(name, "x.npy"), x)
    write(os.path.join(name, "y.npy"), npy("(3,)", b"\0" * 12))
os.makedirs(os.path.join(d, "idx-overflow"), exist_ok=True)
write("idx-overflow/train-images-idx3-ubyte", bytes([0, 0, 8, 3]) + struct.pack(">III", 2**31 - 1, 2**31 - 1, 2**31 - 1) + b"\0" * 64)
write("idx-overflow/train-labels-idx1-ubyte", bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + b"\0" * 4)
rows = "\n".join("%d,%d,%s" % (i, i + 1, lab) for i, lab in enumerate(["0", "1", "1e20", "0"]))
write("label-1e20.csv", rows.encode())
write("label-1e11.csv", "\n".join("%d,%d,%s" % (i, i * 2, lab) for i, lab in enumerate(["0", "1", "1e11", "2"] * 8)).encode())
write("three-rows.csv", b"1,2,0\n3,4,1\n5,6,0\n")
write("half.csv", "\n".join("%d,%d,%s" % (i, i * 3 % 7, "0.5" if i == 5 else str(i % 2)) for i in range(40)).encode())
import numpy as np
os.makedirs(os.path.join(d, "npy-column-labels"), exist_ok=True)
np.save(os.path.join(d, "npy-column-labels", "x.npy"), np.random.RandomState(0).randn(64, 10).astype(np.float32))
np.save(os.path.join(d, "npy-column-labels", "y.npy"), (np.arange(64) % 3).reshape(64, 1).astype(np.int64))
cfg = lambda name, obj: write(name, json.dumps(obj).encode())
cfg("null-epochs.json", {"epochs": None})
cfg("fractional-epochs.json", {"epochs": 1.5})
cfg("layer-without-type.json", {"model": "sequential", "layers": [{"out": 3}]})
seq = lambda layers: {"model": "sequential", "data": "synthetic", "layers": [{"type": "reshape-image"}] + layers + [{"type": "flatten"}, {"type": "linear"}]}
cfg("negative-padding.json", seq([{"type": "conv2d", "out": 2, "kernel": 3, "padding": -5}]))
cfg("stride-zero.json", seq([{"type": "conv2d", "out": 2, "kernel": 3, "stride": 0}]))
cfg("dropout-high.json", seq([{"type": "dropout", "p": 1.5}]))
PY
}

run_bad_input_tests() {
    echo "== bad input (table)"
    make_bad_files
    local d="$work/bad" t="$trainer"
    local quick=(--epochs 1 --model mlp --log-interval 1000)

    # Crafted tensor files: read by inspect, eval and --resume alike.
    row "safetensors header length 0xFF..FF" 2 "header length" - "$t" inspect "$d/huge-header.safetensors"
    row "safetensors offsets that overflow" 2 "data range" - "$t" inspect "$d/overflow-offsets.safetensors"
    row "safetensors shape [-2, -2]" 2 "negative dimension" - "$t" inspect "$d/negative-shape.safetensors"
    row "safetensors shape that overflows" 2 "too large" - "$t" inspect "$d/overflow-shape.safetensors"
    row "safetensors overlapping tensors" 2 "overlaps" - "$t" inspect "$d/overlap.safetensors"
    row "npy negative shape" 2 "negative dimension" "$work/r-npy1" "$t" train --data "npy:$d/npy-negative" --run-dir "$work/r-npy1"
    row "npy giant shape" 2 "too large" "$work/r-npy2" "$t" train --data "npy:$d/npy-giant" --run-dir "$work/r-npy2"
    row "npy short v2 header" 2 "truncated" "$work/r-npy3" "$t" train --data "npy:$d/npy-short-v2" --run-dir "$work/r-npy3"
    row "idx dimensions whose product overflows" 2 "too large" "$work/r-idx" "$t" train --data "idx:$d/idx-overflow" --run-dir "$work/r-idx"
    row "csv label 1e20 for classification" 2 "not a class index" "$work/r-csv1" "$t" train --data "csv:$d/label-1e20.csv" --num-classes 3 --run-dir "$work/r-csv1"
    row "csv label 1e11 is taken as regression, with a notice" 0 "taken as regression" - "$t" train --data "csv:$d/label-1e11.csv" "${quick[@]}" --run-dir "$work/r-csv2"
    row "csv one non-integral label: regression, with a notice" 0 "target 0.5 (sample 6) is not a class index" - "$t" train --data "csv:$d/half.csv" "${quick[@]}" --run-dir "$work/r-csv3"
    row "npy labels as an (N, 1) column train" 0 "done:" - "$t" train --data "npy:$d/npy-column-labels" "${quick[@]}" --run-dir "$work/r-npy4"
    row "an empty validation split is trained without" 0 "leaves no validation sample" - "$t" train --data "csv:$d/three-rows.csv" --val-fraction 0.0001 --test-fraction 0 "${quick[@]}" --run-dir "$work/r-val"

    # Layer specs and numeric options out of range.
    row "conv2d with negative padding" 2 "'padding' must be between 0" "$work/r-l1" "$t" train --config "$d/negative-padding.json" --run-dir "$work/r-l1"
    row "conv2d with stride 0" 2 "'stride' must be between 1" "$work/r-l2" "$t" train --config "$d/stride-zero.json" --run-dir "$work/r-l2"
    row "dropout p 1.5" 2 "'p' must be in [0, 1)" "$work/r-l3" "$t" train --config "$d/dropout-high.json" --run-dir "$work/r-l3"
    row "--bucket-kb too large" 2 "--bucket-kb must be between" - "$t" train --bucket-kb 99999999999 --run-dir "$work/r-o1"
    row "--num-classes too large" 2 "--num-classes must be between" - "$t" train --num-classes 10000000000 --run-dir "$work/r-o2"
    row "--synthetic-samples too large" 2 "--synthetic-samples must be between" - "$t" train --data synthetic --synthetic-samples 999999999999 --run-dir "$work/r-o3"

    # The command line and config files.
    row "a value that is not a number" 2 "--epochs must be a whole number (got 'x')" - "$t" train --epochs x
    row "an unknown flag" 2 "unknown option '--epoch' (did you mean --epochs?)" - "$t" train --epoch 3
    row "a negative number after a space" 2 "--lr must be a positive number (got -1.0)" - "$t" train --lr -1 --run-dir "$work/r-o4"
    row "--label-column -1 after a space" 0 "done:" - "$t" train --data "csv:$d/half.csv" --label-column -1 "${quick[@]}" --run-dir "$work/r-o5"
    row "config epochs null" 2 "option 'epochs' must be a whole number (got null)" - "$t" train --config "$d/null-epochs.json"
    row "config epochs 1.5" 2 "option 'epochs' must be a whole number (got 1.5)" - "$t" train --config "$d/fractional-epochs.json"
    row "config layer without type" 2 "'layers[0].type' is missing" - "$t" train --config "$d/layer-without-type.json"

    row "a trainer started alone in a 2-task Slurm allocation" 2 "announced 2 tasks but MPI started a world of 1" "$work/r-lone" \
        env SLURM_NTASKS=2 SLURM_PROCID=0 SLURM_JOB_ID=1 "$t" train --model mlp --data synthetic --run-dir "$work/r-lone"

    # Failed starts and resumes leave the run directory as it was.
    row "a start that fails on its data creates no run directory" 2 "no such file" "$work/r-absent" "$t" train --data "csv:$d/none.csv" --run-dir "$work/r-absent"
    expect "a failed start leaves no run directory behind" /dev/null test ! -e "$work/r-absent"
    "$t" train --data synthetic --epochs 2 --model mlp --run-dir "$work/r-good" > "$work/r-good.log" 2>&1
    row "a resume onto other data is refused and changes nothing" 2 "would change what the checkpoint holds" "$work/r-good" "$t" train --resume latest --run-dir "$work/r-good" --data "csv:$d/none.csv"
    local ckpt
    ckpt=$(ls -d "$work/r-good/checkpoints"/step-* | tail -n 1)
    mkdir -p "$work/r-good/checkpoints/.tmp-step-99999999-12345"
    cp -r "$work/r-good" "$work/r-edited"
    sed -i 's/"epochs" : 2/"epochs" : 1/' "$work/r-edited/checkpoints/$(basename "$ckpt")/state.json"
    row "an edited state.json is detected" 2 "was changed after the checkpoint was written" - "$t" inspect "$work/r-edited/checkpoints/$(basename "$ckpt")"
    # A resumed run that diverges keeps the good final weights.
    row "a diverged resume keeps final.safetensors" 3 "loss became" "$work/r-good/final.safetensors" "$t" train --resume latest --run-dir "$work/r-good" --epochs 4 --lr 1e30
    expect "resuming removes a killed run's stray temporaries" /dev/null test ! -e "$work/r-good/checkpoints/.tmp-step-99999999-12345"

    # Language models: text data, sampling.
    printf 'ab' > "$d/tiny.txt"
    printf '\xff\xfe not text' > "$d/binary.txt"
    local lm=(--model gpt --n-layer 1 --n-embd 16 --n-head 2 --max-steps 4 --eval-interval 2 --warmup-steps 1)
    row "gpt on a text too short for one window" 2 "too few" "$work/r-lm1" "$t" train "${lm[@]}" --data "text:$d/tiny.txt" --run-dir "$work/r-lm1"
    row "gpt on a file that is not UTF-8" 2 "is not UTF-8 text" "$work/r-lm2" "$t" train "${lm[@]}" --data "text:$d/binary.txt" --run-dir "$work/r-lm2"
    row "gpt on a missing text file" 2 "no such file" "$work/r-lm3" "$t" train "${lm[@]}" --data "text:$d/none.txt" --run-dir "$work/r-lm3"
    row "gpt on image data" 2 "trains on text" - "$t" train --model gpt --data mnist5k
    row "a cnn on text" 2 "only the language models" - "$t" train --model cnn --data shakespeare
    row "--n-head that does not divide --n-embd" 2 "must be divisible by --n-head 3" - "$t" train --model gpt --n-head 3
    row "--warmup-steps without --max-steps" 2 "apply to training by steps" - "$t" train --model mlp --warmup-steps 5
    row "--warmup-steps not below --max-steps" 2 "--warmup-steps must be below --max-steps (got 60 with --max-steps 50)" - "$t" train --model gpt --max-steps 50 --warmup-steps 60
    mkdir -p "$work/not-a-run"
    row "eval of a directory that is not a run" 2 "is not a run directory, or its run has saved none yet" "$work/not-a-run" "$t" eval --checkpoint "$work/not-a-run"
    row "sample from a classifier's run" 2 "not a language model" "$work/r-good" "$t" sample --checkpoint "$work/r-good"
    row "sample with a character outside the vocabulary" 2 "not in the tokenizer's alphabet" "$work/lm" "$t" sample --checkpoint "$work/lm" --prompt "ROMEO~"
    row "sample with --temperature -1" 2 "--temperature must be 0 (greedy) or positive" "$work/lm" "$t" sample --checkpoint "$work/lm" --temperature=-1
    row "sample with --top-p 1.5" 2 "--top-p must be in (0, 1] (got 1.5)" "$work/lm" "$t" sample --checkpoint "$work/lm" --top-p 1.5

    # Library API mistakes in a release build: each stops with its message.
    local mistakes=.build/release/APIMistakes name expected
    while IFS=$'\t' read -r name expected; do
        # A shell of its own reports the trap (to /dev/null); a second command keeps it from
        # handing its process over to the program, which would make this shell report it.
        bash -c '"$0" "$1" > "$2" 2>&1; status=$?; exit $status' "$mistakes" "$name" "$work/mistake-$name.log" 2>/dev/null
        local status=$?
        expect "API mistake in a release build, $name: stops and says \"$expected\"" "$work/mistake-$name.log" \
            bash -c "[ $status -ne 0 ] && grep -qF -- \"\$1\" '$work/mistake-$name.log' && ! grep -q 'no error' '$work/mistake-$name.log'" _ "$expected"
    done < <("$mistakes" --list)
}
