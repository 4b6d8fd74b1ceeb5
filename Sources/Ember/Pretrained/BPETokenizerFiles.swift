import Foundation

extension BPETokenizer {
    /// The tokenizer of a Hugging Face model directory: `tokenizer.json` (a `BPE` model with the
    /// `ByteLevel` pre-tokenizer, or Llama 3's Split + ByteLevel; merges as `"a b"` or `["a", "b"]`,
    /// added tokens), else GPT-2's `vocab.json` and `merges.txt`. A kind it cannot reproduce
    /// exactly (SentencePiece's `Metaspace`, a WordPiece model, a normalizer, another pattern) is
    /// refused by name.
    public static func fromPretrained(_ directory: String) throws -> BPETokenizer {
        let tokenizer = try read(directory)
        tokenizer.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        return tokenizer
    }

    static func read(_ directory: String) throws -> BPETokenizer {
        let json = (directory as NSString).appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: json) { return try fromTokenizerJSON(json) }
        let vocab = (directory as NSString).appendingPathComponent("vocab.json")
        let merges = (directory as NSString).appendingPathComponent("merges.txt")
        guard FileManager.default.fileExists(atPath: vocab), FileManager.default.fileExists(atPath: merges) else {
            throw DataError.file(directory, "holds no tokenizer.json, nor vocab.json and merges.txt")
        }
        guard let v = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: vocab))) as? [String: Int] else {
            throw DataError.file(vocab, "is not a JSON object of tokens to ids")
        }
        let lines = try String(contentsOfFile: merges, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        let pairs = try lines.filter { !$0.hasPrefix("#version") }.map { line -> (String, String) in
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { throw DataError.file(merges, "has a line that is not two tokens: \(String(reflecting: String(line)))") }
            return (String(parts[0]), String(parts[1]))
        }
        return BPETokenizer(vocabulary: v, merges: pairs, addedTokens: ["<|endoftext|>": v["<|endoftext|>"]].compactMapValues { $0 })
    }

    static func fromTokenizerJSON(_ path: String) throws -> BPETokenizer {
        guard let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any],
              let model = root["model"] as? [String: Any] else { throw DataError.file(path, "is not a tokenizer.json (no model)") }
        let kind = model["type"] as? String ?? "BPE"
        guard kind == "BPE" else { throw DataError.file(path, "has a \(kind) model; Ember reads byte-level BPE tokenizers only") }
        let (pre, split) = try preTokenizer(root["pre_tokenizer"] as? [String: Any], path)
        if let normalizer = root["normalizer"] as? [String: Any] {
            throw DataError.file(path, "has the normalizer \(normalizer["type"] as? String ?? "?"); Ember reproduces byte-level BPE without one")
        }
        if (model["byte_fallback"] as? Bool) == true { throw DataError.file(path, "uses byte_fallback, which byte-level BPE does not need; not supported") }
        guard let vocab = model["vocab"] as? [String: Int] else { throw DataError.file(path, "has no model.vocab") }
        let merges = try (model["merges"] as? [Any] ?? []).map { entry -> (String, String) in
            if let s = entry as? String {
                let parts = s.split(separator: " ", maxSplits: 1)
                if parts.count == 2 { return (String(parts[0]), String(parts[1])) }
            } else if let pair = entry as? [String], pair.count == 2 {
                return (pair[0], pair[1])
            }
            throw DataError.file(path, "has a merge that is neither \"a b\" nor [\"a\", \"b\"]: \(entry)")
        }
        var added: [String: Int] = [:]
        for token in root["added_tokens"] as? [[String: Any]] ?? [] {
            if let content = token["content"] as? String, let id = token["id"] as? Int { added[content] = id }
        }
        return BPETokenizer(vocabulary: vocab, merges: merges, addedTokens: added, addsPrefixSpace: pre["add_prefix_space"] as? Bool ?? false,
                            split: split)
    }

    /// The byte-level pre-tokenizer and the words' pattern: `ByteLevel` (GPT-2's pattern), or
    /// Llama 3's `Sequence` of a `Split` by its pattern and a `ByteLevel` without one. Others are
    /// refused by name.
    private static func preTokenizer(_ pre: [String: Any]?, _ path: String) throws -> (byteLevel: [String: Any], split: WordSplit) {
        let kind = pre?["type"] as? String ?? "none"
        if kind == "ByteLevel", let pre {
            guard pre["use_regex"] as? Bool ?? true else { throw DataError.file(path, "has a ByteLevel pre-tokenizer that splits nothing (use_regex false) and no Split before it") }
            return (pre, .gpt2)
        }
        let steps = pre?["pretokenizers"] as? [[String: Any]] ?? []
        guard kind == "Sequence", steps.count == 2, steps[0]["type"] as? String == "Split", steps[1]["type"] as? String == "ByteLevel" else {
            throw DataError.file(path, "has the pre-tokenizer \(kind) (SentencePiece-style Metaspace, say); Ember reproduces ByteLevel (GPT-2's) and Llama 3's Split + ByteLevel")
        }
        let pattern = (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String ?? "(no regex)"
        guard let split = WordSplit.named(pattern: pattern), steps[0]["behavior"] as? String == "Isolated", steps[0]["invert"] as? Bool != true,
              steps[1]["use_regex"] as? Bool == false else {
            throw DataError.file(path, "splits words by the pattern \(String(reflecting: pattern)) (\(steps[0]["behavior"] as? String ?? "?")); Ember reproduces GPT-2's and Llama 3's (Qwen2's) patterns only")
        }
        return (steps[1], split)
    }
}
