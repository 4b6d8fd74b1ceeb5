"""Makes a GPT-2-small-sized Hugging Face directory with random weights (nothing can be
downloaded here): `GPT2Config()` (124M parameters, vocabulary 50,257, context 1,024, 12 layers
of 768), initialised by transformers with seed 0, saved as model.safetensors, with a byte-level
BPE tokenizer trained by `tokenizers` on the bundled Shakespeare (its vocabulary stops where the
corpus runs out of merges; the model's stays 50,257). What docs/pretrained.md's scale figures and
`trainer bench --pretrained` run on.

    python3 scripts/make_gpt2_small.py DIR   (needs torch, transformers, tokenizers)
"""
import gzip, os, sys

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
GPT2LMHeadModel(GPT2Config()).save_pretrained(out, safe_serialization=True)
here = os.path.dirname(os.path.abspath(__file__))
text = gzip.open(os.path.join(here, "..", "examples", "data", "shakespeare.txt.gz"), "rt").read()
tokenizer = ByteLevelBPETokenizer()
tokenizer.train_from_iterator([text], vocab_size=50257, special_tokens=["<|endoftext|>"])
tokenizer.save_model(out)
tokenizer.save(os.path.join(out, "tokenizer.json"))
print(out, sum(p.numel() for p in GPT2LMHeadModel.from_pretrained(out).parameters()), "parameters")
