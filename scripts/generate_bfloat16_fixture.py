"""Writes Tests/EmberTests/Fixtures/bfloat16.json: float32 and float64 values with the bfloat16
bits PyTorch 2.15 rounds them to (`.to(torch.bfloat16)`: nearest, ties to even; from float64
through float32), and the float32 each bfloat16 reads back as, so BFloat16DTypeTests checks
Ember's conversions without PyTorch.
Run: python3 scripts/generate_bfloat16_fixture.py (needs torch)
"""
import json, os, struct

import torch

torch.manual_seed(0)
special = [0.0, -0.0, 1.0, -2.0, 1.00390625, 1.01171875, 1.005, 3.14159, 65504.0, 3.3895313892515355e38,
           3.39e38, -3.4028234663852886e38, 1e-40, -1e-45, 1.1754943508222875e-38, float("inf"), float("-inf")]
random = (torch.randn(200) * torch.logspace(-30, 30, 200)).tolist()
f32 = torch.tensor(special + random, dtype=torch.float32)
f64 = torch.tensor([1 + 2**-8 + 2**-30, 1 + 2**-8, 1 + 2**-8 - 2**-40, 1 / 3, -2.5e-39, 1e300], dtype=torch.float64)


def bits(t):
    return t.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).tolist()


fixture = {
    "float32_bits": [struct.unpack("<I", struct.pack("<f", v))[0] for v in f32.tolist()],
    "float32_to_bfloat16": bits(f32.to(torch.bfloat16)),
    "float64": f64.tolist(),
    "float64_to_bfloat16": bits(f64.to(torch.bfloat16)),
    "nan_to_bfloat16": bits(torch.tensor([float("nan")]).to(torch.bfloat16)),
}
path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTests", "Fixtures", "bfloat16.json")
with open(path, "w") as f:
    json.dump(fixture, f)
print(len(fixture["float32_bits"]), "float32 values,", len(f64), "float64 values")
