"""Before/after: two trainer binaries on the same runs, alternating, compared bitwise.
Usage: python3 scripts/before_after.py OLD_TRAINER NEW_TRAINER [WORKDIR]
Prints a Markdown table: each run's final.safetensors and metrics.jsonl (timings left out)
equal or not. What docs/development.md records for a change that must not change results."""
import hashlib, json, os, shutil, subprocess, sys

old, new = sys.argv[1], sys.argv[2]
work = sys.argv[3] if len(sys.argv) > 3 else "/tmp/ember-before-after"
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
mpirun = os.path.join(repo, "launch", "mpirun")
mlp = ["--model", "mlp", "--data", "synthetic"]
runs = [
    ("cnn, cosine (defaults)", [], ["--epochs", "2"]),
    ("mlp, step schedule", [], mlp + ["--epochs", "3", "--schedule", "step"]),
    ("mlp, warm-up and cosine", [], mlp + ["--epochs", "4", "--warmup-epochs", "1"]),
    ("mlp, plateau with early stopping", [], mlp + ["--epochs", "12", "--schedule", "plateau", "--patience", "2", "--min-delta", "0.05"]),
    ("mlp, Adam, accumulation 2, clipping", [], mlp + ["--epochs", "2", "--optimizer", "adam", "--lr", "0.002", "--grad-accumulation", "2", "--clip-norm", "0.5"]),
    ("mlp, onecycle", [], mlp + ["--epochs", "2", "--schedule", "onecycle"]),
    ("mlp, 2 ranks (mpirun), sharded step", ["mpi2"], mlp + ["--epochs", "2"]),
    ("mlp, 2 ranks (mpirun), unsharded", ["mpi2"], mlp + ["--epochs", "2", "--no-shard-optimizer"]),
    ("mlp with dropout, 2 ranks as threads", [], mlp + ["--epochs", "2", "--dropout", "0.2", "--local-ranks", "2"]),
    ("mlp, --deterministic, 1 rank", [], mlp + ["--epochs", "2", "--dropout", "0.2", "--deterministic", "--global-batch-size", "48"]),
    ("mlp, --deterministic, 3 ranks (mpirun)", ["mpi3"], mlp + ["--epochs", "2", "--dropout", "0.2", "--deterministic", "--global-batch-size", "48"]),
    ("mlp, stopped after 2 epochs and resumed to 4", ["resume"], mlp + ["--epochs", "4"]),
    ("gpt, 30 steps", [], ["--model", "gpt", "--max-steps", "30", "--eval-interval", "10", "--warmup-steps", "5"]),
    ("lstm, 20 steps", [], ["--model", "lstm", "--max-steps", "20", "--eval-interval", "10", "--warmup-steps", "2"]),
]
TIMING = {"epoch_s", "samples_per_s", "tokens_per_s"}


def run(binary, mode, args, d):
    def go(extra, a):
        cmd = ([mpirun, "-n", extra] if extra else []) + [binary, "train"] + a + ["--run-dir", d, "--log-level", "error"]
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    if "resume" in mode:
        half = list(args)
        half[half.index("--epochs") + 1] = "2"
        go(None, half)
        return go(None, ["--resume", "latest", "--epochs", "4"])
    return go({"mpi2": "2", "mpi3": "3"}.get(mode[0]) if mode else None, args)


def fingerprint(d):
    weights = hashlib.md5(open(os.path.join(d, "final.safetensors"), "rb").read()).hexdigest()
    metrics = [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in open(os.path.join(d, "metrics.jsonl"))]
    return weights, metrics


print("| run | final.safetensors | metrics.jsonl |")
print("| --- | --- | --- |")
for i, (name, mode, args) in enumerate(runs):
    prints = []
    for label, binary in (("old", old), ("new", new)):
        d = os.path.join(work, f"{i}-{label}")
        status = run(binary, mode, args, d)
        prints.append(fingerprint(d) if status == 0 and os.path.exists(os.path.join(d, "final.safetensors")) else None)
    if None in prints:
        print(f"| {name} | a run failed | |")
        continue
    print(f"| {name} | {'bitwise equal' if prints[0][0] == prints[1][0] else 'DIFFERENT'} | "
          f"{'equal' if prints[0][1] == prints[1][1] else 'DIFFERENT'} ({len(prints[1][1])} epochs) |")
