"""PyTorch twin of fine-tuning a Hugging Face directory (docs/pretrained.md's scale table):
transformers' model from the same directory, AdamW, random token windows, timed steps. With
--generate N: transformers' greedy generate of N tokens after a 16-token prompt, timed.
Usage: python3 examples/pytorch/pretrained_bench.py DIR [--block 256] [--batch 2] [--steps 4] [--threads 1] [--bf16]
       python3 examples/pytorch/pretrained_bench.py DIR --generate 200 [--threads 1] [--bf16]
Ember's side: trainer train --pretrained DIR --data shakespeare --block-size 256 --batch-size 2 --threads 1 ...
and trainer bench --pretrained DIR --generate 200
"""
import argparse, time
import torch
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("directory")
p.add_argument("--block", type=int, default=256)
p.add_argument("--batch", type=int, default=2)
p.add_argument("--steps", type=int, default=4)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
p.add_argument("--generate", type=int, default=0, help="time greedy generation of this many tokens instead")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(args.directory)
if args.generate:
    model.eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, 16))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        model.generate(prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)  # warm-up
        start = time.time()
        out = model.generate(prompt, max_new_tokens=args.generate, min_new_tokens=args.generate, do_sample=False, pad_token_id=0)
    rate = (out.shape[1] - 16) / (time.time() - start)
    print(f"pytorch generate threads={args.threads} new_tokens={out.shape[1] - 16} tokens_per_s={rate:.1f}" + (" precision=bf16" if args.bf16 else ""))
    raise SystemExit
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.1)
x = torch.randint(0, model.config.vocab_size, (args.batch, args.block))


def step():
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        loss = model(x, labels=x).loss
    loss.backward()
    opt.step()


step()  # warm-up
start = time.time()
for _ in range(args.steps):
    step()
tokens = args.steps * args.batch * args.block / (time.time() - start)
print(f"pytorch pretrained threads={args.threads} tokens_per_s={tokens:.0f}" + (" precision=bf16" if args.bf16 else ""))
