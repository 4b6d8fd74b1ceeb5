# Sourced by integration.sh: a pretrained Hugging Face model fine-tuned by the trainer (the tiny
# GPT-2 of Tests/EmberTests/Fixtures/pretrained/gpt2-bpe, made by transformers, with its BPE
# tokenizer): under launch/mpirun -n 2, a RUN/hf/ directory written, sampling and evaluation from
# the run, a resume from the run alone (mapping the corpus's ids kept beside the run, unless the
# cache does not verify), and a directory it cannot run refused by name.

# fine_tune_llama NAME DIR TOKENIZER INSPECTED: DIR inspected (INSPECTED checks what inspect
# said), fine-tuned on $d/text.txt, its RUN/hf written with the same tokenizer.json, and greedy
# samples from the run and from RUN/hf the same.
fine_tune_llama() {
    local name=$1 dir=$2 tokenizer=$3 inspected=$4
    "$trainer" inspect "$dir" > "$d/$name-inspect.log" 2>&1
    "$trainer" train --pretrained "$dir" --data "text:$d/text.txt" --max-steps 10 --warmup-steps 1 --lr 1e-3 --run-dir "$d/$name" > "$d/$name.log" 2>&1
    "$trainer" sample --checkpoint "$d/$name" --prompt "To be" --tokens 8 --temperature 0 > "$d/$name-run.log" 2>&1
    "$trainer" sample --pretrained "$d/$name/hf" --prompt "To be" --tokens 8 --temperature 0 > "$d/$name-hf.log" 2>&1
    expect "pretrained: a ${name/llama/Llama }-shaped directory with $tokenizer fine-tunes, writes RUN/hf with it, and samples the same from both" "$d/$name.log" \
        bash -c "$inspected && grep -q 'step 10/10  train loss' '$d/$name.log' && cmp -s '$dir/tokenizer.json' '$d/$name/hf/tokenizer.json' && grep -q '^To be' '$d/$name-hf.log' && cmp -s '$d/$name-run.log' '$d/$name-hf.log'"
}

run_pretrained_tests() {
    echo "== pretrained: Hugging Face models fine-tuned"
    local d="$work/pretrained" model=Tests/EmberTests/Fixtures/pretrained/gpt2-bpe
    mkdir -p "$d"
    python3 -c "
lines = ['To be, or not to be, that is the question', 'Café, naïve, résumé; 東京 と 大阪; Москва 🙂 ok', 'the slings and arrows of outrageous fortune']
open('$d/text.txt', 'w').write('\n'.join(lines * 150))"
    launch/mpirun -n 2 "$trainer" train --pretrained "$model" --data "text:$d/text.txt" --max-steps 20 --eval-interval 10 \
        --warmup-steps 2 --lr 1e-3 --run-dir "$d/run" > "$d/run.log" 2>&1
    expect "pretrained: mpirun -n 2 fine-tunes a GPT-2 directory with its BPE tokenizer and writes RUN/hf" "$d/run.log" \
        bash -c "grep -q 'step 20/20  train loss' '$d/run.log' && for f in config.json model.safetensors tokenizer.json vocab.json merges.txt; do [ -e '$d/run/hf/'\$f ] || exit 1; done"
    "$trainer" sample --checkpoint "$d/run" --prompt "To be" --tokens 10 > "$d/sample.log" 2>&1
    "$trainer" eval --checkpoint "$d/run" --split val > "$d/eval.log" 2>&1
    expect "pretrained: trainer sample and eval read the fine-tuned run" "$d/eval.log" \
        bash -c "grep -q '^To be' '$d/sample.log' && grep -qE '^val: [0-9]+ tokens, loss' '$d/eval.log'"
    "$trainer" sample --checkpoint "$d/run" --prompt "To be" --tokens 12 --temperature 0 > "$d/greedy-run.log" 2>&1
    "$trainer" sample --pretrained "$d/run/hf" --prompt "To be" --tokens 12 --temperature 0 > "$d/greedy-hf.log" 2>&1
    expect "pretrained: trainer sample --pretrained RUN/hf writes what the run's checkpoint writes (the same weights)" "$d/greedy-hf.log" \
        bash -c "grep -q '^To be' '$d/greedy-hf.log' && cmp -s '$d/greedy-run.log' '$d/greedy-hf.log'"
    "$trainer" eval --pretrained "$model" --data "text:$d/text.txt" > "$d/eval-before.log" 2>&1
    "$trainer" eval --pretrained "$d/run/hf" --data "text:$d/text.txt" > "$d/eval-hf.log" 2>&1
    expect "pretrained: trainer eval --pretrained measures a directory as it is (RUN/hf as the run's checkpoint, below the model before)" "$d/eval-hf.log" \
        bash -c "cmp -s '$d/eval.log' '$d/eval-hf.log' && [ \"\$(sed -E 's/.*loss ([0-9.]+).*/\\1/' '$d/eval-hf.log')\" \\< \"\$(sed -E 's/.*loss ([0-9.]+).*/\\1/' '$d/eval-before.log')\" ]"
    "$trainer" inspect "$d/run/hf" > "$d/inspect-hf.log" 2>&1
    expect "pretrained: trainer inspect describes a Hugging Face directory (family, sizes, tokenizer, tensors)" "$d/inspect-hf.log" \
        bash -c "grep -q 'Hugging Face gpt2 model, [0-9]* parameters' '$d/inspect-hf.log' && grep -q 'tokenizer: tokenizer.json' '$d/inspect-hf.log' && grep -q 'transformer.h.0.attn.c_attn.weight  F32' '$d/inspect-hf.log'"
    row "trainer eval --checkpoint given a Hugging Face directory" 2 "is a Hugging Face model directory, not a run: give it as --pretrained" "$d/run/hf" \
        "$trainer" eval --checkpoint "$d/run/hf"
    "$trainer" train --resume latest --run-dir "$d/run" --max-steps 30 > "$d/resume.log" 2>&1
    expect "pretrained: --resume latest --run-dir alone continues the fine-tuning" "$d/resume.log" \
        grep -q '"steps" : 30,' "$d/run/summary.json"
    expect "pretrained: the corpus tokenized at the first start is kept beside the run, and the resume maps it" "$d/resume.log" \
        bash -c "ls '$d/run/tokens/'text-*.bin '$d/run/tokens/'text-*.json > /dev/null && grep -q 'from the cache beside the run' '$d/resume.log'"
    truncate -s -2 "$d"/run/tokens/text-*.bin
    "$trainer" train --resume latest --run-dir "$d/run" --max-steps 40 > "$d/resume-cut.log" 2>&1
    expect "pretrained: a token cache cut short is not trusted: the corpus is tokenized again and the run goes on" "$d/resume-cut.log" \
        bash -c "grep -q '\"steps\" : 40,' '$d/run/summary.json' && ! grep -q 'from the cache' '$d/resume-cut.log'"
    # Tokenized once (trainer tokenize, nanoGPT's flat uint16 format), then mapped: the same training.
    "$trainer" tokenize --pretrained "$model" --data "text:$d/text.txt" --out "$d/text.bin" > "$d/tokenize.log" 2>&1
    local same=(--pretrained "$model" --max-steps 6 --eval-interval 3 --warmup-steps 1 --lr 1e-3)
    "$trainer" train "${same[@]}" --data "text:$d/text.txt" --run-dir "$d/from-text" > "$d/from-text.log" 2>&1
    "$trainer" train "${same[@]}" --data "tokens:$d/text.bin" --run-dir "$d/from-tokens" > "$d/from-tokens.log" 2>&1
    expect "pretrained: trainer tokenize, then --data tokens:PATH trains bitwise as the text does" "$d/from-tokens.log" \
        bash -c "grep -q 'tokens of 2 bytes' '$d/tokenize.log' && cmp -s '$d/from-text/final.safetensors' '$d/from-tokens/final.safetensors'"
    row "--data tokens:PATH without the model they belong to" 2 "holds a pretrained tokenizer's ids: train it with --pretrained DIR" "$d/no-model" \
        "$trainer" train --data "tokens:$d/text.bin" --max-steps 5 --warmup-steps 1 --run-dir "$d/no-model"
    python3 -c "import struct; open('$d/bad.bin', 'wb').write(struct.pack('<4H', 1, 2, 999, 3))"
    row "--data tokens:PATH with ids past the vocabulary" 2 "holds token id at position 2 that is not below the vocabulary's 400" "$d/bad-ids" \
        "$trainer" train --pretrained "$model" --data "tokens:$d/bad.bin" --max-steps 5 --warmup-steps 1 --run-dir "$d/bad-ids"
    # A directory without a tokenizer Ember reads (the tiny Llama has none) trains on ids made elsewhere.
    python3 -c "import struct; open('$d/llama-ids.bin', 'wb').write(struct.pack('<3000H', *[(i * 7919) % 64 for i in range(3000)]))"
    launch/mpirun -n 2 "$trainer" train --pretrained Tests/EmberTests/Fixtures/pretrained/llama --data "tokens:$d/llama-ids.bin" \
        --max-steps 6 --eval-interval 3 --warmup-steps 1 --run-dir "$d/llama" > "$d/llama.log" 2>&1
    expect "pretrained: a Llama directory without a tokenizer fine-tunes on token ids under mpirun -n 2 and writes RUN/hf" "$d/llama.log" \
        bash -c "grep -q 'training on token ids without a tokenizer' '$d/llama.log' && grep -q 'step 6/6  train loss' '$d/llama.log' && [ -e '$d/llama/hf/model.safetensors' ]"
    row "trainer sample --prompt on a run without a tokenizer" 2 "cannot turn text into ids" - \
        "$trainer" sample --checkpoint "$d/llama" --prompt "hello" --tokens 3
    # Llama 3's shape and tokenizer (scaled rotary positions, a tied head, its word pattern).
    fine_tune_llama llama3 Tests/EmberTests/Fixtures/pretrained/llama3-bpe "Llama 3's tokenizer" \
        "grep -q \"Llama 3's words, 400 tokens\" '$d/llama3-inspect.log' && grep -q 'scaled as Llama 3.1' '$d/llama3-inspect.log'"
    # Llama 2's kind: SentencePiece BPE ("▁" for spaces, byte fallback), multi-head attention, an untied head.
    fine_tune_llama llama2 Tests/EmberTests/Fixtures/pretrained/llama2-sp "its SentencePiece tokenizer" \
        "grep -q 'SentencePiece BPE as Llama 2.s, \"▁\" for spaces, byte fallback, 467 tokens' '$d/llama2-inspect.log'"
    "$trainer" bench --pretrained "$model" --steps 3 --warmup 1 > "$d/bench.log" 2>&1
    "$trainer" bench --pretrained "$model" --generate 20 >> "$d/bench.log" 2>&1
    expect "pretrained: trainer bench --pretrained times the directory's model fine-tuned and generating (tokens/s, products)" "$d/bench.log" \
        bash -c "grep -qE '^pretrained world=1 threads=1 .*products=[a-z]+:[a-z0-9_]+ optimizer=adamw tokens_per_s=[0-9]+' '$d/bench.log' && grep -qE '^generate threads=1 new_tokens=20 tokens_per_s=[0-9.]+ products=' '$d/bench.log'"
    if grep -qE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
        # bf16 generation packs each weight once; its greedy text may part from float32's only
        # where two tokens' logits are within bf16's rounding, so it is checked to run and name
        # what it writes, not to match.
        "$trainer" sample --pretrained "$d/run/hf" --prompt "To be" --tokens 12 --temperature 0 --precision bf16 > "$d/greedy-bf16.log" 2>&1
        expect "pretrained: trainer sample --precision bf16 generates from the fine-tuned directory" "$d/greedy-bf16.log" \
            bash -c "grep -q '^To be' '$d/greedy-bf16.log' && ! grep -qE 'error|Fatal' '$d/greedy-bf16.log'"
    fi
    mkdir -p "$d/mistral" && cp "$model"/* "$d/mistral/" && sed -i 's/"model_type": "gpt2"/"model_type": "mistral"/' "$d/mistral/config.json"
    row "a pretrained directory of a family Ember does not run" 2 "has model_type 'mistral'; Ember reads gpt2 and llama" "$d/mistral-run" \
        "$trainer" train --pretrained "$d/mistral" --data "text:$d/text.txt" --max-steps 5 --warmup-steps 1 --run-dir "$d/mistral-run"
}
