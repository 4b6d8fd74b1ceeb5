import Foundation

/// Byte-level BPE, GPT-2's tokenizer and the `tokenizers` library's `BPE` model with the
/// `ByteLevel` pre-tokenizer and decoder: the text's UTF-8 bytes, each shown as a printable
/// character, split by GPT-2's pattern into words, each word merged pair by pair in the order of
/// the merge list, then looked up in the vocabulary. Added tokens (`<|endoftext|>`) are matched
/// literally first. Words are cached, so a corpus's common words are merged once. With a
/// `Metaspace`, SentencePiece's kind instead (Llama 2's): characters, not bytes, with "▁" for spaces.
public final class BPETokenizer: Tokenizer, @unchecked Sendable {
    public let vocabulary: [String: Int]
    private let tokens: [Int: String]
    private let ranks: [String: Int]   // "a b" → the merge's rank
    /// Added tokens by their first UTF-8 byte, longest first; and their ids.
    private let added: [UInt8: [(bytes: [UInt8], text: String, id: Int)]]
    private let addedIDs: Set<Int>
    /// `ByteLevel(add_prefix_space: true)`: a space before the text, as if it continued a line.
    public let addsPrefixSpace: Bool
    /// How the text is cut into words before merging: GPT-2's pattern, or Llama 3's.
    public let split: WordSplit
    /// SentencePiece's kind of BPE (nil: byte-level), and whether its words merge alone.
    public let metaspace: Metaspace?
    let cutsAtMarkers: Bool
    /// The special tokens its post-processor puts in front of a text (Llama 2's `<s>`, Llama 3's
    /// `<|begin_of_text|>`): `encodePrompt` adds them, `encode` does not.
    public let promptPrefix: [Int]
    /// The directory it was read from (`fromPretrained`), absolute; what checkpoints record.
    public internal(set) var directory: String?
    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()

    public var vocabularySize: Int { max(vocabulary.count, (tokens.keys.max() ?? -1) + 1) }

    /// Which kind of BPE, in a few words (what `trainer inspect` prints).
    public var kind: String {
        if let metaspace { return "SentencePiece BPE as Llama 2's, \"▁\" for spaces" + (metaspace.byteFallback ? ", byte fallback" : "") }
        return "byte-level BPE, \(split == .gpt2 ? "GPT-2's" : "Llama 3's") words"
    }

    /// - Parameters:
    ///   - vocabulary: token (in byte-level characters) to id.
    ///   - merges: pairs in priority order (the first merges first).
    ///   - addedTokens: literal tokens matched before splitting (special tokens), to their ids.
    ///   - split: the words' pattern (GPT-2's unless the tokenizer says otherwise).
    ///   - metaspace: SentencePiece's kind of BPE instead of byte-level (then `split` and
    ///     `addsPrefixSpace` do not apply).
    ///   - promptPrefix: special tokens a prompt starts with (`encodePrompt`).
    public init(vocabulary: [String: Int], merges: [(String, String)], addedTokens: [String: Int] = [:], addsPrefixSpace: Bool = false,
                split: WordSplit = .gpt2, metaspace: Metaspace? = nil, promptPrefix: [Int] = []) {
        self.vocabulary = vocabulary
        var tokens = Dictionary(vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        for (text, id) in addedTokens { tokens[id] = text }
        self.tokens = tokens
        ranks = Dictionary(merges.enumerated().map { ("\($0.element.0) \($0.element.1)", $0.offset) }, uniquingKeysWith: { a, _ in a })
        let literal = addedTokens.filter { !$0.key.isEmpty }.map { (bytes: Array($0.key.utf8), text: $0.key, id: $0.value) }
        added = Dictionary(grouping: literal) { $0.bytes[0] }.mapValues { $0.sorted { $0.bytes.count > $1.bytes.count } }
        addedIDs = Set(addedTokens.values)
        self.addsPrefixSpace = addsPrefixSpace
        self.split = split
        self.metaspace = metaspace
        self.promptPrefix = promptPrefix
        cutsAtMarkers = metaspace != nil && Metaspace.cutsAtMarkers(merges)
    }

    public func encode(_ text: String) throws -> [Int] { try encodeIDs(text).map(Int.init) }

    public func encodePrompt(_ text: String) throws -> [Int] { promptPrefix + (try encode(text)) }

    /// 32-bit ids, made a piece of text at a time: a corpus of 100 MB never holds all its words
    /// (or its scalars) at once.
    public func encodeIDs(_ text: String) throws -> [Int32] {
        if let metaspace { return try encodeIDs(text, metaspace) }
        var ids: [Int32] = []
        for (segment, special) in splitAdded(addsPrefixSpace && !text.hasPrefix(" ") ? " " + text : text) {
            if let special { ids.append(Int32(special)); continue }
            try split.pieces(of: segment) { piece in
                for word in split.words(piece) { ids += try merge(word).map { Int32($0) } }
            }
        }
        return ids
    }

    /// SentencePiece's kind: each piece between added tokens normalized, then its words merged.
    private func encodeIDs(_ text: String, _ metaspace: Metaspace) throws -> [Int32] {
        var ids: [Int32] = []
        for (index, (segment, special)) in splitAdded(text).enumerated() {
            if let special { ids.append(Int32(special)); continue }
            try Metaspace.forEachWord(metaspace.normalized(segment, atStart: index == 0), cuts: cutsAtMarkers) { word in
                ids += try merge(word).map { Int32($0) }
            }
        }
        return ids
    }

    public func decode(_ ids: [Int]) -> String {
        let text = decodeContinuation(ids)
        return metaspace?.stripsLeadingSpace == true && text.hasPrefix(" ") ? String(text.dropFirst()) : text
    }

    public func decodeContinuation(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let token = tokens[id] else { bytes += Array("\u{FFFD}".utf8); continue }
            if addedIDs.contains(id) { bytes += Array(token.utf8); continue }
            if let metaspace { bytes += metaspace.bytes(of: token); continue }
            for ch in token.unicodeScalars { bytes.append(ByteLevel.byte(of: ch) ?? 0x3F) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The text cut at added tokens: plain segments (nil id) and the added tokens' ids, the
    /// earliest match first (the longest where two start at one place). One pass over the bytes:
    /// searching the text once per added token took Llama 3's 256 of them 6× the whole encoding.
    private func splitAdded(_ text: String) -> [(String, Int?)] {
        guard !added.isEmpty else { return [(text, nil)] }
        func split(_ b: UnsafeBufferPointer<UInt8>) -> [(String, Int?)] {
            var out: [(String, Int?)] = [], start = 0, i = 0
            while i < b.count {
                // A token's bytes begin with a character's first byte, so a hit is on a character boundary.
                guard let hit = added[b[i]]?.first(where: { t in i + t.bytes.count <= b.count && t.bytes.indices.allSatisfy { b[i + $0] == t.bytes[$0] } }) else {
                    i += 1
                    continue
                }
                if i > start { out.append((String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self), nil)) }
                out.append((hit.text, hit.id))
                i += hit.bytes.count
                start = i
            }
            if start < b.count { out.append((String(decoding: UnsafeBufferPointer(rebasing: b[start...]), as: UTF8.self), nil)) }
            return out
        }
        var text = text
        return text.withUTF8(split)
    }

    /// One pre-tokenized word's ids: its bytes as byte-level characters (SentencePiece's kind:
    /// its characters), merged by rank.
    private func merge(_ word: String) throws -> [Int] {
        lock.lock()
        if let hit = cache[word] { lock.unlock(); return hit }
        lock.unlock()
        var parts = metaspace == nil ? word.utf8.map { String(ByteLevel.character(of: $0)) } : word.unicodeScalars.map { String($0) }
        while parts.count > 1 {
            var best: (rank: Int, at: Int)? = nil
            for i in 0..<(parts.count - 1) {
                if let r = ranks[parts[i] + " " + parts[i + 1]], r < best?.rank ?? .max { best = (r, i) }
            }
            guard let best else { break }
            let (a, b) = (parts[best.at], parts[best.at + 1])
            var merged: [String] = [], i = 0
            while i < parts.count {
                if i + 1 < parts.count && parts[i] == a && parts[i + 1] == b { merged.append(a + b); i += 2 } else { merged.append(parts[i]); i += 1 }
            }
            parts = merged
        }
        let ids = try metaspace?.ids(of: parts, vocabulary: vocabulary, word: word) ?? parts.map { part -> Int in
            guard let id = vocabulary[part] else { throw DataError("BPE: '\(part)' of the word \(String(reflecting: word)) is not in the vocabulary") }
            return id
        }
        lock.lock()
        if cache.count < 1_000_000 { cache[word] = ids }
        lock.unlock()
        return ids
    }
}

/// GPT-2's byte-level alphabet and its pre-tokenizing pattern.
enum ByteLevel {
    /// Byte → printable character: the printable Latin-1 bytes stand for themselves, the other
    /// 68 take the code points from 256 on (GPT-2's `bytes_to_unicode`).
    static let characters: [Character] = {
        let printable = Array(33...126) + Array(161...172) + Array(174...255)
        var map = [Int](repeating: 0, count: 256), extra = 0
        for b in 0..<256 {
            if printable.contains(b) { map[b] = b } else { map[b] = 256 + extra; extra += 1 }
        }
        return map.map { Character(Unicode.Scalar(UInt32($0))!) }
    }()
    static let bytes: [Unicode.Scalar: UInt8] = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1.unicodeScalars.first!, UInt8($0)) })

    static func character(of byte: UInt8) -> Character { characters[Int(byte)] }
    static func byte(of scalar: Unicode.Scalar) -> UInt8? { bytes[scalar] }

    enum Kind { case letter, number, space, other }
    static func kind(_ s: Unicode.Scalar) -> Kind {
        if s.properties.isWhitespace { return .space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static let contractions = ["s", "t", "re", "ve", "m", "ll", "d"]

    /// GPT-2's split: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    static func words(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars), n = s.count
        var out: [String] = [], i = 0
        func run(from j: Int, while kind: Kind) -> Int {
            var e = j
            while e < n && self.kind(s[e]) == kind { e += 1 }
            return e
        }
        while i < n {
            var end = i
            if s[i] == "'", let c = contractions.first(where: { c in
                let u = Array(c.unicodeScalars)
                return i + 1 + u.count <= n && Array(s[(i + 1)..<(i + 1 + u.count)]) == u
            }) {
                end = i + 1 + c.unicodeScalars.count
            } else {
                let start = s[i] == " " && i + 1 < n && kind(s[i + 1]) != .space ? i + 1 : i
                switch kind(s[start]) {
                case .letter, .number: end = run(from: start, while: kind(s[start]))
                case .other: end = run(from: start, while: .other)
                case .space:
                    let e = run(from: i, while: .space)
                    // \s+(?!\S): a run before a non-space leaves its last character to the next word.
                    end = e < n && e - i > 1 ? e - 1 : e
                }
            }
            var word = String.UnicodeScalarView()
            word.append(contentsOf: s[i..<end])
            out.append(String(word))
            i = end
        }
        return out
    }
}
