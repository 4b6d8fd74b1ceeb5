"""Writes Tests/EmberTests/Fixtures/pretrained/: tiny GPT-2 (both key layouts) and Llama
directories made by `transformers` with random weights (no hub download), and the logits and
loss `transformers` computes for fixed tokens, so the tests compare CausalLM without PyTorch.
Run: python3 scripts/generate_pretrained_fixtures.py (needs torch, transformers, safetensors)
Check Ember's savePretrained output: EMBER_KEEP_SAVED=/tmp/saved swift test --filter PretrainedModelTests,
then python3 scripts/generate_pretrained_fixtures.py --check-saved /tmp/saved (transformers loads each
directory and gives the fixtures' logits).
"""
import sys
import json, os, shutil
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) == 3 and sys.argv[1] == "--check-saved":
    from transformers import AutoModelForCausalLM
    expected = json.load(open(os.path.join(here, "..", "Tests", "EmberTests", "Fixtures", "pretrained", "expected.json")))
    for name in sorted(os.listdir(sys.argv[2])):
        e = expected[name]
        logits = AutoModelForCausalLM.from_pretrained(os.path.join(sys.argv[2], name)).eval()(torch.tensor(e["tokens"])).logits
        worst = (logits.flatten() - torch.tensor(e["logits"])).abs().max().item()
        print(f"{name}: transformers loads Ember's directory; largest logit difference {worst:.2e}")
        assert worst < 1e-4
    sys.exit(0)
out = os.path.join(here, "..", "Tests", "EmberTests", "Fixtures", "pretrained")
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
torch.manual_seed(0)
tokens = torch.tensor([[5, 17, 3, 42, 8, 0, 61, 2, 33, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])


def record(name, model):
    model.eval()
    with torch.no_grad():
        # Weights of a visible size: the default init makes tiny logits that compare trivially.
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.tie_weights()
        result = model(tokens, labels=tokens)
    d = os.path.join(out, name)
    model.save_pretrained(d, safe_serialization=True)
    return d, {"tokens": tokens.tolist(), "shape": list(result.logits.shape),
               "logits": result.logits.flatten().tolist(), "loss": result.loss.item()}


cases = {}
gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4, n_inner=48,
                                  layer_norm_epsilon=1e-5, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0))
d, cases["gpt2"] = record("gpt2", gpt2)
# The original release's layout: no `transformer.` prefix, no lm_head, causal-mask buffers present.
orig = os.path.join(out, "gpt2-original")
os.makedirs(orig)
shutil.copy(os.path.join(d, "config.json"), orig)
weights = {k[len("transformer."):]: v for k, v in load_file(os.path.join(d, "model.safetensors")).items() if k.startswith("transformer.")}
for i in range(2):
    weights[f"h.{i}.attn.bias"] = torch.tril(torch.ones(32, 32)).view(1, 1, 32, 32)
save_file(weights, os.path.join(orig, "model.safetensors"), metadata={"format": "pt"})
cases["gpt2-original"] = cases["gpt2"]
llama = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                     rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False))
_, cases["llama"] = record("llama", llama)
tied = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=40, num_hidden_layers=1,
                                    num_attention_heads=4, num_key_value_heads=4, rope_theta=500000.0, tie_word_embeddings=True))
_, cases["llama-tied"] = record("llama-tied", tied)
# A GPT-2 whose vocabulary is the BPE fixture's (Fixtures/bpe), with its tokenizer files: what
# `trainer train --pretrained` fine-tunes in launch/test.
bpe = os.path.join(out, "..", "bpe")
tokenized = GPT2LMHeadModel(GPT2Config(vocab_size=400, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                       resid_pdrop=0, embd_pdrop=0, attn_pdrop=0))
tokenized.save_pretrained(os.path.join(out, "gpt2-bpe"), safe_serialization=True)
for name in ("tokenizer.json", "vocab.json", "merges.txt"):
    shutil.copy(os.path.join(bpe, name), os.path.join(out, "gpt2-bpe", name))
json.dump(cases, open(os.path.join(out, "expected.json"), "w"))
print("wrote", ", ".join(cases), "to", os.path.normpath(out))
