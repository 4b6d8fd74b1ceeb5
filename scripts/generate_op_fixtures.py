"""Writes Tests/EmberTests/Fixtures/ops.json: PyTorch's values for every op case Ember tests.

Each case stores its inputs, the output, a random weight w of the output's shape, and the
gradients of sum(output * w) for every floating-point input; everything in float64. The Swift
tests rebuild the inputs, run Ember's version of the same op (looked up by the case's `op` name)
and compare; the same inputs feed float64 gradcheck. Run: python3 scripts/generate_op_fixtures.py
"""
import json
import os

import torch

torch.manual_seed(0)
F = torch.nn.functional
cases = []


def rand(shape, positive=False, away_from_zero=False):
    x = torch.randn(shape, dtype=torch.float64)
    if positive:
        x = x.abs() + 0.5
    elif away_from_zero:
        x = torch.where(x.abs() < 0.2, x.sign() * 0.2 + x, x)
    return x


def case(op, fn, inputs, label=""):
    """inputs: list of tensors (float64 require grad; int64 are indices)."""
    xs = [t.clone().requires_grad_(t.dtype == torch.float64) for t in inputs]
    out = fn(*xs)
    entry = {
        "name": f"{op}{'/' + label if label else ''}",
        "op": op,
        "inputs": [{"shape": list(t.shape), "dtype": "int64" if t.dtype == torch.int64 else "float64",
                    "values": t.detach().flatten().tolist()} for t in inputs],
        "output": {"shape": list(out.shape), "values": out.detach().flatten().double().tolist()},
    }
    if out.dtype == torch.float64:
        w = torch.randn(out.shape, dtype=torch.float64)
        (out * w).sum().backward()
        entry["weight"] = w.flatten().tolist()
        entry["grads"] = [x.grad.flatten().tolist() if x.grad is not None else None for x in xs]
    cases.append(entry)


# Broadcasting binary ops over scalar, vector, broadcast and batched shapes.
binary_shapes = {
    "scalar": ([], [3]), "vector": ([4], [4]), "row": ([2, 3], [3]),
    "outer": ([2, 1, 3], [4, 1]), "batched": ([2, 3, 4], [2, 3, 4]),
}
binary = {
    "add": (lambda a, b: a + b, {}), "sub": (lambda a, b: a - b, {}), "mul": (lambda a, b: a * b, {}),
    "div": (lambda a, b: a / b, {"b": "nonzero"}), "pow": (lambda a, b: a ** b, {"a": "positive"}),
    "maximum": (torch.maximum, {}), "minimum": (torch.minimum, {}),
}
for op, (fn, domain) in binary.items():
    for label, (sa, sb) in binary_shapes.items():
        a = rand(sa, positive=domain.get("a") == "positive")
        b = rand(sb, away_from_zero=domain.get("b") == "nonzero")
        case(op, fn, [a, b], label)

# Unary ops.
unary = {
    "neg": (lambda x: -x, None), "exp": (torch.exp, None), "log": (torch.log, "positive"),
    "sqrt": (torch.sqrt, "positive"), "rsqrt": (torch.rsqrt, "positive"), "abs": (torch.abs, "nonzero"),
    "reciprocal": (torch.reciprocal, "nonzero"), "sin": (torch.sin, None), "cos": (torch.cos, None),
    "relu": (torch.relu, "nonzero"), "sigmoid": (torch.sigmoid, None), "tanh": (torch.tanh, None),
    "leakyRelu": (lambda x: F.leaky_relu(x, 0.1), "nonzero"), "elu": (lambda x: F.elu(x, 1.5), "nonzero"),
    "gelu": (F.gelu, None), "silu": (F.silu, None), "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), None),
    "powScalar3": (lambda x: x ** 3, None), "powScalarHalf": (lambda x: x ** 0.5, "positive"),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), "nonzero"), "erf": (torch.erf, None), "square": (torch.square, None),
    "scalarArithmetic": (lambda x: (2 - x) * 3 + x / 4 - 1 / (x + 3), "positive"),
}
for op, (fn, domain) in unary.items():
    for label, shape in {"scalar": [], "vector": [5], "matrix": [2, 3], "batched": [2, 3, 4]}.items():
        x = rand(shape, positive=domain == "positive", away_from_zero=domain == "nonzero")
        if op == "clamp":
            x = torch.where((x.abs() - 0.5).abs() < 0.05, x * 1.3, x)
        case(op, fn, [x], label)

# Reductions and softmax.
reductions = {
    "sumAll": lambda x: x.sum(), "sumDim1Keep": lambda x: x.sum(1, keepdim=True), "sumDims02": lambda x: x.sum((0, 2)),
    "meanAll": lambda x: x.mean(), "meanDim0": lambda x: x.mean(0), "varAll": lambda x: x.var(),
    "varDim1Keep": lambda x: x.var(1, keepdim=True), "stdDim2": lambda x: x.std(2),
    "maxAll": lambda x: x.max(), "maxDim1": lambda x: x.max(1).values, "minDim0Keep": lambda x: x.min(0, keepdim=True).values,
    "minAll": lambda x: x.min(), "logsumexpDim1": lambda x: torch.logsumexp(x, 1),
    "softmaxDim1": lambda x: x.softmax(1), "softmaxDim0": lambda x: x.softmax(0), "logSoftmaxLast": lambda x: x.log_softmax(-1),
    "argmaxDim2": lambda x: x.argmax(2), "argminAll": lambda x: x.argmin(),
}
for op, fn in reductions.items():
    case(op, fn, [rand([3, 4, 5])], "batched")
for op in ["sumAll", "meanAll", "maxAll", "softmaxDim0", "logSoftmaxLast"]:
    case(op, reductions[op], [rand([6])], "vector")

# Matrix products.
matmuls = {
    "dot": ([3], [3]), "matVec": ([2, 3], [3]), "vecMat": ([3], [3, 4]), "matMat": ([2, 3], [3, 4]),
    "batched": ([2, 2, 3], [2, 3, 4]), "batchTimesMatrix": ([2, 2, 3], [3, 4]),
    "broadcastBatch": ([3, 2, 3], [1, 3, 2]), "matrixTimesBatch": ([2, 3], [4, 3, 2]), "vecBatch": ([3], [2, 3, 4]),
}
for label, (sa, sb) in matmuls.items():
    case("matmul", torch.matmul, [rand(sa), rand(sb)], label)
case("matmulTransposeB", lambda a, b: a @ b.transpose(-1, -2), [rand([2, 3]), rand([4, 3])], "matrix")
case("matmulTransposeA", lambda a, b: a.transpose(-1, -2) @ b, [rand([3, 2]), rand([3, 4])], "matrix")
case("matmulTransposeBoth", lambda a, b: a.transpose(-1, -2) @ b.transpose(-1, -2), [rand([2, 3, 2]), rand([2, 4, 3])], "batched")

# Shape, slicing, joining and indexing.
x234 = lambda: rand([2, 3, 4])
case("reshape", lambda x: x.reshape(4, 6), [x234()])
case("reshapeInfer", lambda x: x.reshape(-1, 2), [x234()])
case("flatten", lambda x: x.flatten(1), [x234()])
case("permute", lambda x: x.permute(2, 0, 1), [x234()])
case("transpose", lambda x: x.transpose(0, 2), [x234()])
case("t", lambda x: x.t(), [rand([3, 5])])
case("expand", lambda x: x.expand(2, 3, 4), [rand([3, 1])])
case("squeezeUnsqueeze", lambda x: x.squeeze(1).unsqueeze(0), [rand([2, 1, 3])])
case("narrow", lambda x: x.narrow(2, 1, 2), [x234()])
case("concat", lambda a, b, c: torch.cat([a, b, c], 1), [rand([2, 1, 4]), rand([2, 3, 4]), rand([2, 2, 4])])
case("stack", lambda a, b: torch.stack([a, b], 1), [rand([2, 3]), rand([2, 3])])
case("split", lambda x: torch.cat([p * (i + 1) for i, p in enumerate(x.split(2, dim=1))], 1), [rand([2, 5])])
case("chunk", lambda x: torch.cat([p * (i + 1) for i, p in enumerate(x.chunk(3, dim=0))], 0), [rand([7, 2])])
case("subscript", lambda x: x[1] * 2 + x[0:2].sum(0), [x234()])
case("indexSelect", lambda x, i: x.index_select(1, i), [x234(), torch.tensor([2, 0, 2, 1])])
case("gather", lambda x, i: x.gather(1, i), [rand([3, 4]), torch.tensor([[0, 3], [1, 1], [2, 0]])])
case("scatterAdd", lambda x, i, s: x.scatter_add(1, i, s), [rand([3, 4]), torch.tensor([[0, 3], [1, 1], [2, 0]]), rand([3, 2])])
case("indexAdd", lambda x, i, s: x.index_add(0, i, s), [rand([4, 3]), torch.tensor([0, 2, 0]), rand([3, 3])])
case("where", lambda c, a, b: torch.where(c > 0, a, b), [rand([2, 3]), rand([2, 3]), rand([3])])
case("maskedFill", lambda x: x.masked_fill(x > 0.3, -1.5), [rand([3, 4])])

# Batch normalisation with batch statistics (the fused op), with and without affine parameters.
bn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)
case("batchNormTrain", bn, [rand([4, 3, 5]), rand([3]), rand([3])], "sequence")
case("batchNormTrain", bn, [rand([2, 3, 4, 4]), rand([3]), rand([3])], "image")
case("batchNormTrainPlain", lambda x: F.batch_norm(x, None, None, None, None, training=True), [rand([5, 3])])

# Convolutions through im2col + matmul, strided and padded.
case("conv2dStrided", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [rand([2, 1, 6, 5]), rand([3, 1, 3, 3]), rand([3])])
case("conv2dIm2col", lambda x, w, b: F.conv2d(x, w, b, padding=1), [rand([2, 4, 5, 5]), rand([2, 4, 3, 3]), rand([2])])

# Cross-entropy (the fused op) with mean, sum and no reduction, and an ignored target.
case("crossEntropyMean", lambda x, t: F.cross_entropy(x, t), [rand([5, 4]), torch.tensor([0, 3, 1, 1, 2])])
case("crossEntropySum", lambda x, t: F.cross_entropy(x, t, reduction="sum", ignore_index=1), [rand([5, 4]), torch.tensor([0, 3, 1, 1, 2])])
case("crossEntropyNone", lambda x, t: F.cross_entropy(x, t, reduction="none"), [rand([3, 6]), torch.tensor([5, 0, 2])])

# Binary cross-entropy with logits (the fused op), with a positive-class weight per class.
bin_t = (torch.rand(4, 3, generator=torch.Generator().manual_seed(3)) > 0.5).double()
# Targets are data, not differentiated (detached), so their fixture gradient is None.
case("bceWithLogitsMean", lambda x, t: F.binary_cross_entropy_with_logits(x, t.detach()), [rand([4, 3]) * 3, bin_t])
case("bceWithLogitsPos", lambda x, t: F.binary_cross_entropy_with_logits(x, t.detach(), pos_weight=torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64), reduction="sum"), [rand([4, 3]) * 3, bin_t])
case("bceWithLogitsNone", lambda x, t: F.binary_cross_entropy_with_logits(x, t.detach(), reduction="none"), [rand([4, 3]) * 3, bin_t])

# Ops of the language-model issue: rearrangements, scans, sorting, norms, einsum, attention.
case("tril", lambda x: torch.tril(x), [rand([3, 4])])
case("trilDiagonal", lambda x: torch.tril(x, diagonal=1), [rand([2, 3, 4])])
case("triu", lambda x: torch.triu(x, diagonal=-1), [rand([4, 3])])
case("flip", lambda x: torch.flip(x, [0, 2]), [x234()])
case("repeat", lambda x: x.repeat(2, 1, 3), [rand([2, 3])])
case("repeatInterleave", lambda x: x.repeat_interleave(2, dim=1), [rand([2, 3])])
case("repeatInterleaveCounts", lambda x: x.repeat_interleave(torch.tensor([1, 0, 3]), dim=0), [rand([3, 2])])
case("unbind", lambda x: sum(t * (i + 1) for i, t in enumerate(x.unbind(1))), [x234()])
case("cumsum", lambda x: x.cumsum(1), [x234()])
case("cumsumInt", lambda x: x.cumsum(0), [torch.tensor([[1, 2], [3, 4], [5, 6]])])
case("prod", lambda x: x.prod(1), [x234()])
case("prodWithZero", lambda x: x.prod(), [torch.tensor([1.5, 0.0, -2.0, 0.5], dtype=torch.float64)])
case("prodKeep", lambda x: x.prod(0, keepdim=True), [rand([3, 2])])
case("sortValues", lambda x: torch.sort(x, dim=1, descending=True).values, [x234()])
case("sortIndices", lambda x: torch.sort(x, dim=-1).indices, [rand([3, 5])])
case("argsort", lambda x: torch.argsort(x, dim=0), [rand([4, 3])])
case("topk", lambda x: torch.topk(x, 2, dim=1).values, [rand([3, 5])])
case("topkSmallest", lambda x: torch.topk(x, 3, dim=-1, largest=False).values, [x234()])
case("topkIndices", lambda x: torch.topk(x, 2).indices, [rand([3, 5])])
case("norm2", lambda x: torch.linalg.vector_norm(x), [x234()])
case("norm1Dim", lambda x: torch.linalg.vector_norm(x, 1, dim=1), [x234()])
case("normInfDim", lambda x: torch.linalg.vector_norm(x, float("inf"), dim=-1, keepdim=True), [rand([3, 4])])
case("norm3", lambda x: torch.linalg.vector_norm(x, 3, dim=(0, 2)), [x234()])
case("outer", lambda a, b: torch.outer(a, b), [rand([3]), rand([4])])
case("anyAll", lambda x: torch.any(x > 1, dim=1).long() * 2 + torch.all(x > -1, dim=1).long(), [rand([4, 3])])
case("einsumBmm", lambda a, b: torch.einsum("bij,bjk->bik", a, b), [rand([2, 3, 4]), rand([2, 4, 5])])
case("einsumAttention", lambda a, b: torch.einsum("bhqd,bhkd->bhqk", a, b), [rand([2, 2, 3, 4]), rand([2, 2, 5, 4])])
case("einsumOuter", lambda a, b: torch.einsum("i,j->ij", a, b), [rand([3]), rand([4])])
case("einsumTranspose", lambda a: torch.einsum("ij->ji", a), [rand([3, 4])])
case("einsumSum", lambda a: torch.einsum("bij->bj", a), [x234()])
case("einsumImplicit", lambda a, b: torch.einsum("ij,jk", a, b), [rand([3, 4]), rand([4, 2])])
case("einsumContractTwo", lambda a, b: torch.einsum("abc,cbd->ad", a, b), [rand([2, 3, 4]), rand([4, 3, 2])])
case("doubleScalars", lambda x: (x * 0.1 + 0.3) / 0.7 - 2.5 * x, [rand([3, 2])])
sdpa = F.scaled_dot_product_attention
case("sdpa", lambda q, k, v: sdpa(q, k, v), [rand([2, 3, 4]), rand([2, 5, 4]), rand([2, 5, 3])])
case("sdpaCausal", lambda q, k, v: sdpa(q, k, v, is_causal=True), [rand([2, 2, 4, 3]), rand([2, 2, 4, 3]), rand([2, 2, 4, 3])])
case("sdpaCausalRect", lambda q, k, v: sdpa(q, k, v, is_causal=True), [rand([1, 3, 2]), rand([1, 5, 2]), rand([1, 5, 2])])
case("sdpaScale", lambda q, k, v: sdpa(q, k, v, scale=0.3), [rand([3, 4]), rand([5, 4]), rand([5, 2])])
attn_bool = torch.tensor([[True, False, True, True, False], [True, True, True, False, False], [False, True, True, True, True]])
case("sdpaAllowedMask", lambda q, k, v: sdpa(q, k, v, attn_mask=attn_bool), [rand([2, 3, 4]), rand([2, 5, 4]), rand([2, 5, 3])])
case("sdpaAdditiveMask", lambda q, k, v, m: sdpa(q, k, v, attn_mask=m), [rand([2, 3, 4]), rand([2, 5, 4]), rand([2, 5, 3]), rand([2, 3, 5])])

case("layerNorm", lambda x, w, b: F.layer_norm(x, [4], w, b), [x234(), rand([4]), rand([4])])
case("layerNormPlain", lambda x: F.layer_norm(x, [3, 4], eps=1e-3), [x234()])
case("layerNormWeightOnly", lambda x, w: F.layer_norm(x, [4], w), [rand([5, 4]), rand([4])])
case("rmsNorm", lambda x, w: F.rms_norm(x, [4], w), [x234(), rand([4])])
case("rmsNormEps", lambda x: F.rms_norm(x, [3, 4], eps=1e-2), [x234()])
case("geluTanh", lambda x: F.gelu(x, approximate="tanh"), [rand([3, 4]) * 2])

# A composite expression in the shape of a small network.
case("composite", lambda a, b, c: ((a * 2 - 1).relu() @ b + c).sigmoid().sum(),
     [rand([4, 3]), rand([3, 2]), rand([2])])

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTests", "Fixtures", "ops.json")
with open(path, "w") as f:
    json.dump({"generator": "scripts/generate_op_fixtures.py", "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {os.path.normpath(path)}")
