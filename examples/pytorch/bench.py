"""PyTorch twin of `trainer bench`: the same models, batches, losses and optimizers, timed the
same way (full steps after a warm-up), printing the same line:

    NAME world=W threads=T samples_per_s=X step_ms=Y peak_rss_mb=M

    python3 examples/pytorch/bench.py --model all --threads 1
    python3 examples/pytorch/bench.py --model mlp --world 2     # DistributedDataParallel, gloo

Not needed by Ember's tests; used for docs/benchmarks.md.
"""
import argparse
import os
import resource
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def make(name):
    g = torch.Generator().manual_seed(0)
    if name == "lstm":
        class CharLSTM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding, self.lstm, self.head = nn.Embedding(76, 128), nn.LSTM(128, 256, batch_first=True), nn.Linear(256, 76)
            def forward(self, idx):
                return self.head(self.lstm(self.embedding(idx))[0])
        loss = lambda out, y: F.cross_entropy(out.view(-1, 76), y.view(-1))
        return CharLSTM(), torch.randint(0, 76, (32, 64), generator=g), torch.randint(0, 76, (32, 64), generator=g), 32, loss, 0.001, 0.0
    if name == "gpt":
        from gpt_model import GPT
        model = GPT(vocab=76, block=64, layers=4, heads=4, width=128)
        loss = lambda out, y: F.cross_entropy(out.view(-1, 76), y.view(-1))
        return model, torch.randint(0, 76, (32, 64), generator=g), torch.randint(0, 76, (32, 64), generator=g), 32, loss, 0.001, 0.0
    if name == "seednet":
        model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 1))
        return model, torch.randn(100, 10, generator=g), torch.randn(100, 1, generator=g), 100, F.mse_loss, 0.01, 0.0
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
        return model, torch.randn(64, 784, generator=g), torch.randint(0, 10, (64,), generator=g), 64, F.cross_entropy, 0.01, 0.9
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10))
    return model, torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g), 64, F.cross_entropy, 0.01, 0.9


def run(name, steps, warmup, threads, rank=0, world=1, optimizer="sgd", bf16=False):
    torch.set_num_threads(threads)
    model, x, y, batch, loss_fn, lr, momentum = make(name)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    if name == "gpt":
        opt = torch.optim.AdamW(model.parameters(), lr=0.001, weight_decay=0.1)
    elif name == "lstm":
        opt = torch.optim.AdamW(model.parameters(), lr=0.001)
    elif optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=0.001)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def step():
        opt.zero_grad()
        # --bf16: PyTorch's CPU mixed precision, as `trainer bench --precision bf16`.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    if world > 1:
        t = torch.tensor([elapsed])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        elapsed = t.item()
    step_s = elapsed / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if rank == 0:
        print(f"{name} world={world} threads={threads} samples_per_s={batch * world / step_s:.0f} "
              f"step_ms={step_s * 1000:.3f} peak_rss_mb={rss:.1f}" + (" optimizer=adam" if optimizer == "adam" else "")
              + (f" optimizer=adamw tokens_per_s={batch * world * 64 / step_s:.0f}" if name in ("gpt", "lstm") else "")
              + (" precision=bf16" if bf16 else ""), flush=True)


def worker(rank, world, args):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for name in args.models:
        run(name, args.steps, args.warmup, args.threads, rank, world, args.optimizer, args.bf16)
    dist.barrier()
    os._exit(0)  # gloo teardown can abort at exit; everything is printed by now


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="all")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="adam: Adam lr 0.001 in place of the model's SGD")
    p.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss")
    args = p.parse_args()
    args.models = ["seednet", "mlp", "cnn"] if args.model == "all" else [args.model]
    if args.world > 1:
        mp.spawn(worker, args=(args.world, args), nprocs=args.world)
    else:
        for name in args.models:
            run(name, args.steps, args.warmup, args.threads, optimizer=args.optimizer, bf16=args.bf16)


if __name__ == "__main__":
    main()
