"""Writes Tests/EmberTests/Fixtures/bf16.json: PyTorch's results under
`torch.autocast("cpu", dtype=torch.bfloat16)` for matmul, linear, conv2d, scaled dot-product
attention, causal multi-head self-attention and an LSTM, forward and backward (gradients of sum(output * w) for inputs and
parameters), from float32 inputs, so PrecisionTests compares Ember's autocast without PyTorch.
Run: python3 scripts/generate_bf16_fixtures.py (needs torch)
"""
import json, os
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
cases = []


def flat(t):
    return t.detach().float().flatten().tolist()


def case(name, fn, inputs, params=None):
    xs = [t.clone().requires_grad_(True) for t in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fn(*xs)
    if isinstance(out, tuple):
        out = out[0]
    w = torch.randn(out.shape)
    (out.float() * w).sum().backward()
    cases.append({"name": name, "inputs": [{"shape": list(t.shape), "values": flat(t)} for t in inputs],
                  "params": {k: {"shape": list(p.shape), "values": flat(p)} for k, p in (params or {}).items()},
                  "output": {"shape": list(out.shape), "values": flat(out)}, "weight": flat(w),
                  "grads": [flat(x.grad) for x in xs],
                  "paramGrads": {k: flat(p.grad) for k, p in (params or {}).items()}})


case("matmul", lambda a, b: a @ b, [torch.randn(8, 32), torch.randn(32, 16)])
lin = nn.Linear(32, 16)
case("linear", lambda x: lin(x), [torch.randn(8, 32)], dict(lin.named_parameters()))
conv = nn.Conv2d(3, 4, 3, padding=1)
case("conv2d", lambda x: conv(x), [torch.randn(2, 3, 8, 8)], dict(conv.named_parameters()))
case("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [torch.randn(2, 2, 8, 16), torch.randn(2, 2, 8, 16), torch.randn(2, 2, 8, 16)])
# Causal self-attention through the packed projection (Ember's fused path for GPT and encoders).
mha = nn.MultiheadAttention(16, 2, batch_first=True)
causal = torch.triu(torch.full((8, 8), float("-inf")), diagonal=1)
case("mha", lambda x: mha(x, x, x, attn_mask=causal, is_causal=True, need_weights=False),
     [torch.randn(2, 8, 16)], dict(mha.named_parameters()))
lstm = nn.LSTM(8, 16, batch_first=True)
case("lstm", lambda x: lstm(x), [torch.randn(3, 5, 8)], dict(lstm.named_parameters()))
path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTests", "Fixtures", "bf16.json")
json.dump({"torch": torch.__version__, "cases": cases}, open(path, "w"))
print("wrote", len(cases), "cases to", os.path.normpath(path))
