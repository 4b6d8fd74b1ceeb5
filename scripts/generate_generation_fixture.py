"""Writes Tests/EmberTests/Fixtures/pretrained/generation.json: `transformers`' greedy
`generate` on the tiny fixture directories (made by scripts/generate_pretrained_fixtures.py),
so GenerationTests compares CausalLM.generate without PyTorch. Greedy only: a sampled
continuation depends on the random generator, which Ember and PyTorch do not share.
Run: python3 scripts/generate_generation_fixture.py (needs torch, transformers)
"""
import json
import os

import torch
from transformers import AutoModelForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "Tests", "EmberTests", "Fixtures", "pretrained")
# GPT-2's fixtures have 32 positions: prompt and continuation stay inside them, as transformers needs.
cases = {"gpt2": ([3, 17, 5, 42, 8], 24), "gpt2-original": ([1, 2, 3], 20), "llama": ([3, 17, 5, 42, 8], 40),
         "llama-tied": ([9, 9, 9], 40)}
out = {}
for name, (prompt, new) in cases.items():
    model = AutoModelForCausalLM.from_pretrained(os.path.join(fixtures, name)).eval()
    with torch.no_grad():
        ids = model.generate(torch.tensor([prompt]), max_new_tokens=new, do_sample=False, pad_token_id=0)
    out[name] = {"prompt": prompt, "maxNewTokens": new, "output": ids[0].tolist()}
    print(name, len(ids[0]) - len(prompt), "new tokens", "(stopped at eos)" if len(ids[0]) - len(prompt) < new else "")
json.dump(out, open(os.path.join(fixtures, "generation.json"), "w"))
