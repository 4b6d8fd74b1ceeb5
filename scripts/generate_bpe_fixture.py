"""Writes Tests/EmberTests/Fixtures/bpe/: a small byte-level BPE tokenizer trained with Hugging
Face's `tokenizers` (GPT-2's pre-tokenizer and decoder) on text with multi-byte UTF-8, saved both
as tokenizer.json and as GPT-2's vocab.json + merges.txt, and cases.json: texts with the ids the
`tokenizers` library gives them (the last a long seeded mix of awkward pieces). The tests compare BPETokenizer with these; they need no Python.
Run: python3 scripts/generate_bpe_fixture.py (needs tokenizers)
"""
import json, os
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "Tests", "EmberTests", "Fixtures", "bpe")
os.makedirs(out, exist_ok=True)
corpus = [
    "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune, Or to take arms against a sea of troubles",
    "Café, naïve, résumé, Straße, Ærø; 東京 と 大阪; Москва и Санкт-Петербург; 🙂 🚀 ok",
    "numbers 12345 and 3.14159, tabs\tand\nnewlines\n\n  double  spaces   and trailing ",
    "I'm sure you're right, we'll see, they've gone, he'd say it's John's",
] * 20
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(corpus, trainer)
tok.save(os.path.join(out, "tokenizer.json"))
tok.model.save(out)  # vocab.json, merges.txt
texts = [
    "To be, or not to be", "Café naïve 東京 🙂🚀", "  leading and trailing  ", "tabs\tand\nnewlines\n\nend",
    "I'm sure you're right, it's John's", "12345 3.14159", "", " ", "\n", "Straße<|endoftext|>Москва",
    "unseen words: xylophone quartz 🦀", "a  b   c\t\td", "'s 're 've", "!!!???...", "emoji🙂in🙂words",
]
# A long text of random pieces (seeded): CRLF, no-break spaces, combining marks, ZWJ emoji,
# right-to-left and Hangul, digits and punctuation runs, in every order.
import random
random.seed(7)
pieces = ["hello", " world", "  ", "\t", "\n", "\n\n", " \n ", "Café", "naïve", "東京", "🙂", "👩‍👩‍👧", "Москва", "'s", "'ll",
          " don't", "123", " 4567", "!!", "?!", "…", "—", "x̃", "\u00a0", " ", "   a", "ß", "İ", "\r\n", "z" * 30,
          "الْعَرَبِيَّة", "한국어", "𝔘𝔫𝔦"]
texts.append("".join(random.choice(pieces) for _ in range(3000)))
cases = [{"text": t, "ids": tok.encode(t).ids} for t in texts]
for c in cases:
    assert tok.decode(c["ids"], skip_special_tokens=False) == c["text"], c
with open(os.path.join(out, "cases.json"), "w") as f:  # a case a line
    f.write('{"cases": [\n' + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]}\n")
print(f"wrote {len(cases)} cases, vocabulary {tok.get_vocab_size()}")
