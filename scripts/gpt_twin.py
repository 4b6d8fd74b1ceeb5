"""PyTorch twin of `trainer train --model gpt` (nanoGPT's model and CPU Shakespeare recipe) on
the bundled corpus with the same split, for side-by-side time and quality:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 scripts/gpt_twin.py [--steps 2000] [--threads 1]

Model: token + learned position embeddings, 4 pre-LN blocks (width 128, 4 heads, causal SDPA,
MLP 512 with exact GELU, no biases), final LayerNorm, head tied to the token embedding.
Recipe: batch 12 random windows of 64, AdamW lr 1e-3 (β2 0.99, weight decay 0.1 on matrices),
100 warm-up steps then cosine to 1e-4 at the last step, clip 1.0. Validates over the whole last
10% of the corpus (every next-character prediction once) every --eval-interval steps and at the
end, as `trainer train` does (0: at the end only), and prints the times with and without the
validations.
"""
import argparse, gzip, math, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=2000)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--eval-interval", type=int, default=250)
p.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16), as Ember's --precision bf16")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(1337)
here = os.path.dirname(os.path.abspath(__file__))
text = gzip.open(os.path.join(here, "..", "examples", "data", "shakespeare.txt.gz"), "rt").read()
chars = sorted(set(text)); stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n_val = round(len(data) * 0.1); train, val = data[:-n_val], data[-n_val:]
T, B, V, C, L, H = 64, 12, len(chars), 128, 4, 4

sys.path.insert(0, os.path.join(here, "..", "examples", "pytorch"))
from gpt_model import GPT, adamw  # noqa: E402

m = GPT(vocab=V, block=T, layers=L, heads=H, width=C)
opt = adamw(m, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
def lr_at(it, warm=100, lr=1e-3, lo=1e-4):
    if it < warm: return lr * (it + 1) / (warm + 1)
    # The cosine reaches `lo` at the last step, as Ember's StepSchedule.
    return lo + 0.5 * (1 + math.cos(math.pi * min(1, (it - warm) / (args.steps - 1 - warm)))) * (lr - lo)

@torch.no_grad()
def val_loss():
    m.eval(); total, count = 0.0, 0
    preds = len(val) - 1
    starts = list(range(0, preds, T))
    for i in range(0, len(starts), 256):
        xs, ys = [], []
        for s0 in starts[i:i + 256]:
            s = min(s0, len(val) - 1 - T); skip = s0 - s
            xs.append(val[s:s + T]); y = val[s + 1:s + T + 1].clone(); y[:skip] = -100; ys.append(y)
        x, y = torch.stack(xs), torch.stack(ys)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = m(x)
        total += F.cross_entropy(logits.float().view(-1, V), y.view(-1), ignore_index=-100, reduction="sum").item()
        count += (y != -100).sum().item()
    m.train(); return total / count

t0 = time.time()
eval_s, last_val = 0.0, None
for it in range(args.steps):
    for g in opt.param_groups: g["lr"] = lr_at(it)
    ix = torch.randint(len(train) - T, (B,))
    x = torch.stack([train[i:i + T] for i in ix]); y = torch.stack([train[i + 1:i + T + 1] for i in ix])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    if (args.eval_interval and (it + 1) % args.eval_interval == 0) or it + 1 == args.steps:
        e0 = time.time(); last_val = val_loss(); eval_s += time.time() - e0
        print(f"step {it + 1} loss {loss.item():.4f} val loss {last_val:.4f} {time.time() - t0:.1f}s", flush=True)
wall_s = time.time() - t0
train_s = wall_s - eval_s
print(f"pytorch gpt steps={args.steps} threads={args.threads} wall_s={wall_s:.1f} train_s={train_s:.1f} eval_s={eval_s:.1f} "
      f"tokens_per_s={args.steps * B * T / train_s:.0f} val_loss={last_val:.4f}" + (" precision=bf16" if args.bf16 else ""))
