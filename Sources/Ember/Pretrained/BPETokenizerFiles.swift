import Foundation

extension BPETokenizer {
    /// The tokenizer of a Hugging Face model directory: `tokenizer.json` (a `BPE` model with the
    /// `ByteLevel` pre-tokenizer, or Llama 3's Split + ByteLevel, or SentencePiece's kind as
    /// Llama 2's: byte fallback, with a Prepend + Replace normalizer or a `Metaspace` pre-tokenizer;
    /// merges as `"a b"` or `["a", "b"]`, added tokens), else GPT-2's `vocab.json` and
    /// `merges.txt`. A kind it cannot reproduce exactly (a WordPiece or Unigram model, another
    /// normalizer or pattern) is refused by name.
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
        guard kind == "BPE" else { throw DataError.file(path, "has a \(kind) model; Ember reads BPE tokenizers only") }
        guard let vocab = model["vocab"] as? [String: Int] else { throw DataError.file(path, "has no model.vocab") }
        let metaspace = try Self.metaspace(root, model: model, vocabulary: vocab, path)
        var pre: [String: Any] = [:], split = WordSplit.gpt2
        if metaspace == nil {
            if let normalizer = root["normalizer"] as? [String: Any] {
                let steps = (normalizer["normalizers"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "?" }
                let named = (normalizer["type"] as? String ?? "?") + (steps.isEmpty ? "" : " (\(steps.joined(separator: ", ")))")
                throw DataError.file(path, "has the normalizer \(named); Ember reproduces byte-level BPE without one, and SentencePiece's Prepend + Replace")
            }
            (pre, split) = try preTokenizer(root["pre_tokenizer"] as? [String: Any], path)
            if (model["byte_fallback"] as? Bool) == true { throw DataError.file(path, "uses byte_fallback with a byte-level pre-tokenizer; not supported") }
        }
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
                            split: split, metaspace: metaspace, promptPrefix: try promptPrefix(root["post_processor"] as? [String: Any], path))
    }

    /// The special tokens the post-processor's template puts before a text's (`single`:
    /// `[SpecialToken <s>, Sequence A]`), directly or inside a `Sequence` of processors; none for
    /// another kind (GPT-2's `ByteLevel` adds nothing).
    private static func promptPrefix(_ processor: [String: Any]?, _ path: String) throws -> [Int] {
        guard let processor else { return [] }
        if processor["type"] as? String == "Sequence" {
            return try (processor["processors"] as? [[String: Any]] ?? []).flatMap { try promptPrefix($0, path) }
        }
        guard processor["type"] as? String == "TemplateProcessing" else { return [] }
        let single = processor["single"] as? [[String: Any]] ?? [], specials = processor["special_tokens"] as? [String: Any] ?? [:]
        var prefix: [Int] = []
        for piece in single {
            guard let special = piece["SpecialToken"] as? [String: Any] else { break }  // the text's own tokens
            let name = special["id"] as? String ?? "?"
            guard let ids = (specials[name] as? [String: Any])?["ids"] as? [Int] else {
                throw DataError.file(path, "has a post-processor template naming the special token \(name), which it does not define")
            }
            prefix += ids
        }
        return prefix
    }

    /// SentencePiece's kind of BPE in either layout `transformers` writes: the legacy one (the
    /// normalizer `Sequence[Prepend("▁"), Replace(" ", "▁")]`, the Prepend optional, no
    /// pre-tokenizer) or the newer one (no normalizer, `Metaspace` with "▁" and `split: false`);
    /// nil for neither.
    private static func metaspace(_ root: [String: Any], model: [String: Any], vocabulary: [String: Int], _ path: String) throws -> Metaspace? {
        let normalizer = root["normalizer"] as? [String: Any], pre = root["pre_tokenizer"] as? [String: Any]
        let steps = normalizer?["type"] as? String == "Sequence" ? normalizer?["normalizers"] as? [[String: Any]] ?? [] : normalizer.map { [$0] } ?? []
        let replacesSpaces = steps.last.map { $0["type"] as? String == "Replace" && ($0["pattern"] as? [String: Any])?["String"] as? String == " "
                                              && $0["content"] as? String == Metaspace.marker } ?? false
        let prepends = steps.count == 2 && steps[0]["type"] as? String == "Prepend" && steps[0]["prepend"] as? String == Metaspace.marker
        let prepend: Metaspace.Prepend
        if replacesSpaces && (steps.count == 1 || prepends) && pre == nil {
            prepend = prepends ? .everyPiece : .never
        } else if normalizer == nil, let pre, pre["type"] as? String == "Metaspace" {
            guard pre["replacement"] as? String == Metaspace.marker, pre["split"] as? Bool == false,
                  let scheme = Metaspace.Prepend(rawValue: pre["prepend_scheme"] as? String ?? "always"), scheme != .everyPiece else {
                let splits = (pre["split"] as? Bool).map { "\($0)" } ?? "?"
                throw DataError.file(path, "has a Metaspace pre-tokenizer with replacement \(pre["replacement"] ?? "?"), split \(splits), prepend_scheme \(pre["prepend_scheme"] ?? "?"); Ember reproduces \"▁\", split false, prepend_scheme always, first or never")
            }
            prepend = scheme
        } else {
            return nil
        }
        let decoders = (root["decoder"] as? [String: Any])?["decoders"] as? [[String: Any]] ?? []
        let strips = decoders.contains { $0["type"] as? String == "Strip" && $0["start"] as? Int ?? 0 >= 1 }
        let unknown = (model["unk_token"] as? String).flatMap { vocabulary[$0] }
        return Metaspace(prepend: prepend, byteFallback: model["byte_fallback"] as? Bool ?? false, unknown: unknown,
                         fusesUnknown: model["fuse_unk"] as? Bool ?? false, stripsLeadingSpace: strips)
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
