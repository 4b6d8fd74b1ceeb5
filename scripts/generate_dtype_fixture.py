"""Writes Tests/EmberTests/Fixtures/dtypes.safetensors: one tensor per element type PyTorch
stores (BOOL masks, U8, I8, I16, I32, F16, BF16, F32, F64, I64), with the values each must read
as, so SafetensorsTests checks Ember's conversions without PyTorch.
Run: python3 scripts/generate_dtype_fixture.py (needs torch and safetensors)
"""
import os

import torch
from safetensors.torch import save_file

base = torch.tensor([[-2.5, 0.0, 1.0], [3.25, -0.0078125, 65504.0]])
tensors = {
    "mask": torch.tensor([[True, False, True], [False, False, True]]),
    "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
    "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "i16": torch.tensor([-32768, 5, 32767], dtype=torch.int16),
    "i32": torch.tensor([-2**31, 9, 2**31 - 1], dtype=torch.int32),
    "f16": base.to(torch.float16),
    "bf16": torch.tensor([1.0, 1.00390625, 1.01171875, -3.3e38, 1e-40, 3.14159]).to(torch.bfloat16),
    "f32": base,
    "f64": base.double(),
    "i64": torch.tensor([-(2**62), 0, 2**62]),
}
path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTests", "Fixtures", "dtypes.safetensors")
save_file(tensors, path, metadata={"format": "pt"})
for k, t in tensors.items():
    print(k, t.dtype, t.flatten().tolist() if t.dtype != torch.bfloat16 else t.float().flatten().tolist())
