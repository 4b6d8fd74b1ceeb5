"""Writes Tests/EmberTests/Fixtures/bpe-llama2/ and bpe-llama2-metaspace/: small tokenizers of
Llama 2's kind (SentencePiece BPE as `transformers` converts it: spaces as "▁", a "▁" in front,
no word split, <unk> <s> </s> then the 256 byte tokens <0x00>..<0xFF> for byte fallback, the
decoder Replace + ByteFallback + Fuse + Strip), trained with Hugging Face's `tokenizers`, in
both of the layouts `transformers` writes: the legacy one (a Prepend + Replace normalizer, no
pre-tokenizer: Llama 2, TinyLlama, Mistral), trained on words as Llama 2's was, and the newer one
(no normalizer, a Metaspace pre-tokenizer prepending to the first piece only), trained with
merges across spaces. cases.json holds texts with the ids and the
decoded text the `tokenizers` library gives (special tokens kept), and the ids with the special
tokens its post-processor adds (the legacy one has Llama 2's: <s> in front). The tests need no Python.
Run: python3 scripts/generate_llama2_tokenizer_fixture.py (needs tokenizers)
"""
import json, os, random
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, decoders, trainers, processors

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "Tests", "EmberTests", "Fixtures")
corpus = [
    "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune, Or to take arms against a sea of troubles",
    "def main():\n    return  42\n\n    if x:\n        pass",
    "Café, naïve, résumé; 東京 と 大阪; numbers 12345 and 3.14159",
] * 20
SPECIAL = ["<unk>", "<s>", "</s>"]
DECODER = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])



def train(split_words):
    """A tokenizer in the legacy layout. With split_words, trained on words as SentencePiece
    trains Llama 2's (no token has "▁" after another character); without, merges cross spaces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if split_words:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL))
    # The byte tokens go in after the special ones, as in Llama 2.
    spec = json.loads(tok.to_str())
    trained = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {t: i for i, t in enumerate(SPECIAL)}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for t, _ in trained:
        if t not in vocab:
            vocab[t] = len(vocab)
    spec["model"]["vocab"] = vocab
    for added in spec["added_tokens"]:
        added["id"] = vocab[added["content"]]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = DECODER
    return tok


legacy = train(split_words=True)
# Llama 2's post-processor: `tokenizer(text)` puts <s> in front (what a prompt gets).
legacy.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
metaspace = train(split_words=False)
metaspace.normalizer = None
metaspace.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)

texts = [
    "To be, or not to be", "the question", " leading space", "  two leading", "trailing  ", "a  b   c",
    "def main():\n    return  42\n", "tabs\tand\nnewlines\n\nend", "", " ", "\n", "▁literal metaspace",
    "unseen: Москва 🦀 ß", "Café naïve 東京", "hello</s>world", "<s>start", "end</s>", "a <s> b",
    "12345 3.14159", "<unk> itself", "x" * 40,
]
random.seed(13)
pieces = ["hello", " world", "  ", "\t", "\n", "\n\n", " \n ", "Café", "東京", "🙂", "Москва", " don't", "123", "!!",
          "</s>", "<s>", "    ", "def", "return", "▁", "z" * 12, "\u00a0", "x̃", "한국어"]
texts.append("".join(random.choice(pieces) for _ in range(1500)))

for name, t in [("bpe-llama2", legacy), ("bpe-llama2-metaspace", metaspace)]:
    out = os.path.join(fixtures, name)
    os.makedirs(out, exist_ok=True)
    t.save(os.path.join(out, "tokenizer.json"))
    cases = []
    for text in texts:
        ids = t.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": t.decode(ids, skip_special_tokens=False),
                      "with_special_tokens": t.encode(text).ids})
    with open(os.path.join(out, "cases.json"), "w") as f:  # a case a line
        f.write('{"cases": [\n' + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]}\n")
    fallback = sum(1 for c in cases for i in c["ids"] if 3 <= i < 259)
    print(f"{out}: {len(cases)} cases, vocabulary {t.get_vocab_size()}, {fallback} byte-fallback tokens")

# A Llama 2-shaped directory with the word-trained tokenizer (multi-head attention, untied head,
# <s> and </s> as in Llama 2's config), which launch/test fine-tunes with `trainer train --pretrained`.
import shutil
import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.manual_seed(4)
model_dir = os.path.join(fixtures, "pretrained", "llama2-sp")
LlamaForCausalLM(LlamaConfig(vocab_size=legacy.get_vocab_size(), hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=False,
                             bos_token_id=1, eos_token_id=2)).save_pretrained(model_dir, safe_serialization=True)
shutil.copy(os.path.join(fixtures, "bpe-llama2", "tokenizer.json"), os.path.join(model_dir, "tokenizer.json"))
print("wrote", model_dir)
