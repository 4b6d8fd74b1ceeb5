"""Adds Tests/EmberTests/Fixtures/pretrained/llama-rope-llama3/ and its entry in expected.json:
a tiny Llama with Llama 3.1's rotary scaling (`rope_type: llama3`), its frequencies chosen so
that one is kept, one blended and two divided by the factor, and the logits and loss
`transformers` computes over 80 positions (past the scaling's original 64); and llama3-bpe/, a
Llama 3.2-shaped directory (scaled rotary positions, tied head) with the Llama 3 tokenizer of
Fixtures/bpe-llama3, which launch/test fine-tunes with `trainer train --pretrained`. The other
fixtures (scripts/generate_pretrained_fixtures.py) are left as they are.
Run: python3 scripts/generate_rope_scaling_fixture.py (needs torch, transformers)
"""
import json
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "Tests", "EmberTests", "Fixtures", "pretrained")
torch.manual_seed(3)
# head_dim 8: inverse frequencies 1, 0.1, 0.01, 0.001, wavelengths 6.3, 63, 628, 6283 against
# the thresholds 64 / 4 = 16 (kept below) and 64 / 1 = 64 (divided above).
config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=False,
                     rope_theta=10000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
model = LlamaForCausalLM(config).eval()
tokens = torch.randint(0, 64, (1, 80))
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0, 0.2)
    result = model(tokens, labels=tokens)
name = "llama-rope-llama3"
model.save_pretrained(os.path.join(out, name), safe_serialization=True)
path = os.path.join(out, "expected.json")
expected = json.load(open(path))
expected[name] = {"tokens": tokens.tolist(), "shape": list(result.logits.shape), "logits": result.logits.flatten().tolist(),
                  "loss": result.loss.item()}
json.dump(expected, open(path, "w"))
print("wrote", name, json.load(open(os.path.join(out, name, "config.json"))).get("rope_parameters") or "(rope_scaling at the top)")

import shutil
small = LlamaForCausalLM(LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True, rope_theta=500000.0,
                                     rope_scaling=config.rope_scaling, bos_token_id=None, eos_token_id=0))
small.save_pretrained(os.path.join(out, "llama3-bpe"), safe_serialization=True)
shutil.copy(os.path.join(out, "..", "bpe-llama3", "tokenizer.json"), os.path.join(out, "llama3-bpe", "tokenizer.json"))
print("wrote llama3-bpe")
