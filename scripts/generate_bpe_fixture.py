"""Writes Tests/EmberTests/Fixtures/bpe/: a small byte-level BPE tokenizer trained with Hugging
Face's `tokenizers` (GPT-2's pre-tokenizer and decoder) on text with multi-byte UTF-8, saved both
as tokenizer.json and as GPT-2's vocab.json + merges.txt, and cases.json: texts with the ids the
`tokenizers` library gives them (the last a long seeded mix of awkward pieces); and
Fixtures/bpe-llama3/: the same with Llama 3's pre-tokenizer (a Split by its pattern, then
ByteLevel without one), tokenizer.json only, with cases for that pattern's own rules.
The tests compare BPETokenizer with these; they need no Python.
Run: python3 scripts/generate_bpe_fixture.py (needs tokenizers)
"""
import json, os
import tokenizers
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
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def train(pre_tokenizer, extra_corpus=()):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus + list(extra_corpus), trainer)
    return tok


tok = train(pre_tokenizers.ByteLevel(add_prefix_space=False))
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


def write_cases(tok, texts, directory, words=False):
    # With words: the pre-tokenizer's words too (byte-level characters), to check the split alone.
    cases = [dict({"text": t, "ids": tok.encode(t).ids}, **({"words": [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(t)]} if words else {}))
             for t in texts]
    for c in cases:
        assert tok.decode(c["ids"], skip_special_tokens=False) == c["text"], c
    with open(os.path.join(directory, "cases.json"), "w") as f:  # a case a line
        f.write('{"cases": [\n' + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]}\n")
    print(f"{directory}: {len(cases)} cases, vocabulary {tok.get_vocab_size()}")


write_cases(tok, texts, out)

# Llama 3's pattern: contractions in any case, one leading non-letter before letters, digits in
# threes, punctuation with its line breaks, whitespace through its last line break.
# Its corpus has what the pattern treats its own way, so merges cross those places.
own = ["End.\n\nNext!\r\n\r\nline; (hello) [world] 1234567 YOU'RE 'RE it's\n\tindent --\n--\n"] * 20
llama = train(pre_tokenizers.Sequence([pre_tokenizers.Split(tokenizers.Regex(LLAMA3), behavior="isolated"),
                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), own)
out3 = os.path.join(here, "..", "Tests", "EmberTests", "Fixtures", "bpe-llama3")
os.makedirs(out3, exist_ok=True)
llama.save(os.path.join(out3, "tokenizer.json"))
extra = ["I'M SURE YOU'RE RIGHT, IT'S JOHN'S, We'Ll", "1234567 12 3.14159265 ٣٤٥٦", "(hello) [world] \"quoted\" 'single'",
         "end.\n\nNext!\r\n\r\nline", "  \n  x", "\t\tindent\n\tdeeper", "a\u00a0b \u00a0c", "x!!\n", "--\n--\n", "$100,000.00",
         "'tis 'twas 'S", "\n\n\n", " \n", "words\n  \n\tafter"]
random.seed(11)
pieces3 = pieces + ["(", ")", "1234", "!\n", ".\r\n", "'RE", "'Ll", " \t\n", "\t", "99999"]
write_cases(llama, texts + extra + ["".join(random.choice(pieces3) for _ in range(3000))], out3, words=True)
