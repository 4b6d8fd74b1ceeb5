"""Writes Tests/EmberTests/Fixtures/edges.json: PyTorch's values and gradients where an op is
not differentiable and PyTorch's convention decides (clamp at and between its bounds), and the
state-dict keys and outputs of BatchNorm without running statistics.

Same case format as generate_op_fixtures.py; the Swift test (EdgeCaseReferenceTests) compares
values and gradients but runs no gradcheck, since finite differences mean nothing at a kink.
Run: python3 scripts/generate_edge_fixtures.py (needs torch)
"""
import json
import os

import torch

torch.manual_seed(0)
cases = []


def case(op, fn, inputs, label=""):
    xs = [t.clone().requires_grad_(t.dtype == torch.float64) for t in inputs]
    out = fn(*xs)
    w = torch.randn(out.shape, dtype=torch.float64)
    (out * w).sum().backward()
    cases.append({
        "name": f"{op}{'/' + label if label else ''}", "op": op,
        "inputs": [{"shape": list(t.shape), "dtype": "float64", "values": t.flatten().tolist()} for t in inputs],
        "output": {"shape": list(out.shape), "values": out.detach().flatten().tolist()},
        "weight": w.flatten().tolist(),
        "grads": [x.grad.flatten().tolist() if x.grad is not None else None for x in xs],
    })


d = torch.float64
# Scalar bounds: values below, at, between and above them.
x = torch.tensor([-1.0, -0.5, -0.25, 0.0, 0.5, 1.0], dtype=d)
case("clampScalar", lambda x: x.clamp(-0.5, 0.5), [x], "bounds")
case("clampScalarMin", lambda x: x.clamp(min=-0.5), [x], "min")
case("clampScalarMax", lambda x: x.clamp(max=0.5), [x], "max")
# Tensor bounds: every order of x against ordered, equal and crossed bounds.
xs, los, his = [], [], []
for lo, hi in [(1.0, 2.0), (1.0, 1.0), (2.0, 1.0)]:
    for v in [0.0, 1.0, 1.5, 2.0, 3.0]:
        xs.append(v); los.append(lo); his.append(hi)
grid = [torch.tensor(v, dtype=d) for v in (xs, los, his)]
case("clampTensor", lambda x, lo, hi: torch.clamp(x, lo, hi), grid, "grid")
case("clampTensorMin", lambda x, lo: torch.clamp(x, min=lo), grid[:2], "grid")
case("clampTensorMax", lambda x, hi: torch.clamp(x, max=hi), [grid[0], grid[2]], "grid")
# Broadcast bounds (a row of lower bounds, one upper bound), away from ties.
case("clampTensorBroadcast", lambda x, lo, hi: torch.clamp(x, lo, hi),
     [torch.randn(3, 4, dtype=d), torch.tensor([-0.7, -0.3, 0.1, -1.2], dtype=d), torch.tensor([0.8], dtype=d)], "broadcast")

# The 2-norm's gradient at a zero vector (a padded row): PyTorch defines it as 0, not NaN.
rows = torch.tensor([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0], [0.0, 0.0, 0.0]], dtype=d)
case("norm2Dim", lambda x: torch.linalg.vector_norm(x, dim=1), [rows], "zero rows")
case("norm2All", lambda x: torch.linalg.vector_norm(x), [torch.zeros(2, 3, dtype=d)], "all zero")

# BatchNorm without running statistics: no buffers, batch statistics in eval too.
bn = torch.nn.BatchNorm1d(3, track_running_stats=False).double()
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.5, 0.5, -1.0])); bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
bx = torch.randn(5, 3, dtype=d)
bn.train(); train_out = bn(bx).detach()
bn.eval(); eval_out = bn(bx).detach()
batchnorm = {"keys": sorted(bn.state_dict().keys()), "weight": bn.weight.tolist(), "bias": bn.bias.tolist(),
             "input": {"shape": list(bx.shape), "values": bx.flatten().tolist()},
             "train": train_out.flatten().tolist(), "eval": eval_out.flatten().tolist()}

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTests", "Fixtures", "edges.json")
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases, "batchNormUntracked": batchnorm}, f, indent=1)
print(f"wrote {len(cases)} cases to {os.path.normpath(path)}")
