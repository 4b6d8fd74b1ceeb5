import Foundation

/// Turns text into token ids and back. `CharTokenizer` (one token per character of a corpus's
/// alphabet) and `ByteTokenizer` (the 256 byte values) are Ember's; both are `Codable` so a
/// run saves its tokenizer beside its weights and `trainer sample` reads it back.
public protocol Tokenizer: Sendable {
    var vocabularySize: Int { get }
    func encode(_ text: String) throws -> [Int]
    func decode(_ tokens: [Int]) -> String
    /// The text's tokens as 32-bit ids: what a corpus is stored as (4 bytes a token, not 8).
    func encodeIDs(_ text: String) throws -> [Int32]
    /// The text of tokens that follow earlier ones (generation shows its tokens as they come):
    /// `decode`'s, keeping what only a text's start drops (SentencePiece's leading space).
    func decodeContinuation(_ tokens: [Int]) -> String
    /// A prompt's tokens, with whatever the tokenizer puts in front of a text (Llama's `<s>`):
    /// what `transformers`' `tokenizer(prompt)` gives `generate`.
    func encodePrompt(_ text: String) throws -> [Int]
}

extension Tokenizer {
    public func encodeIDs(_ text: String) throws -> [Int32] { try encode(text).map { Int32(truncatingIfNeeded: $0) } }
    public func decodeContinuation(_ tokens: [Int]) -> String { decode(tokens) }
    public func encodePrompt(_ text: String) throws -> [Int] { try encode(text) }
}

/// One token per Unicode scalar of the corpus's alphabet, in sorted order (nanoGPT's
/// character-level Shakespeare tokenizer).
public struct CharTokenizer: Tokenizer, Codable, Equatable {
    /// The alphabet: token `i` is `symbols[i]`.
    public let symbols: [String]
    private let index: [Unicode.Scalar: Int]

    /// The alphabet of `corpus`.
    public init(corpus: String) {
        self.init(symbols: Set(corpus.unicodeScalars).sorted().map { String($0) })
    }

    public init(symbols: [String]) {
        self.symbols = symbols
        index = Dictionary(symbols.enumerated().compactMap { i, s in s.unicodeScalars.first.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
    }

    public var vocabularySize: Int { symbols.count }

    /// The text's tokens; a character outside the alphabet is an error naming it.
    public func encode(_ text: String) throws -> [Int] { try encodeIDs(text).map(Int.init) }

    public func encodeIDs(_ text: String) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            guard let i = index[s] else {
                throw DataError("the character \(String(reflecting: String(s))) is not in the tokenizer's alphabet of \(symbols.count) characters")
            }
            out.append(Int32(i))
        }
        return out
    }

    public func decode(_ tokens: [Int]) -> String {
        tokens.map { $0 >= 0 && $0 < symbols.count ? symbols[$0] : "\u{FFFD}" }.joined()
    }

    enum CodingKeys: String, CodingKey { case kind, symbols }
    public init(from decoder: Decoder) throws {
        self.init(symbols: try decoder.container(keyedBy: CodingKeys.self).decode([String].self, forKey: .symbols))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("char", forKey: .kind)
        try c.encode(symbols, forKey: .symbols)
    }
    public static func == (a: Self, b: Self) -> Bool { a.symbols == b.symbols }
}

/// The 256 byte values of the text's UTF-8 as tokens: any text, no vocabulary to build.
public struct ByteTokenizer: Tokenizer, Codable, Equatable {
    public init() {}
    public var vocabularySize: Int { 256 }
    public func encode(_ text: String) throws -> [Int] { text.utf8.map { Int($0) } }
    public func encodeIDs(_ text: String) throws -> [Int32] { text.utf8.map { Int32($0) } }
    public func decode(_ tokens: [Int]) -> String {
        String(decoding: tokens.map { UInt8(clamping: $0) }, as: UTF8.self)
    }
}

/// Reading a tokenizer saved by either kind (`{"kind": "char", ...}` or `{"kind": "byte"}`).
public enum SavedTokenizer {
    public static func decode(_ data: Data) throws -> Tokenizer {
        struct Kind: Decodable { let kind: String }
        let kind = try JSONDecoder().decode(Kind.self, from: data).kind
        switch kind {
        case "char": return try JSONDecoder().decode(CharTokenizer.self, from: data)
        case "byte": return ByteTokenizer()
        case "ids": return try JSONDecoder().decode(TokenIDsOnly.self, from: data)
        case "bpe":
            // A pretrained model's tokenizer travels as the directory it came from.
            struct Source: Decodable { let directory: String }
            return try BPETokenizer.fromPretrained(try JSONDecoder().decode(Source.self, from: data).directory)
        default: throw DataError("unknown tokenizer kind '\(kind)' (known: char, byte, bpe, ids)")
        }
    }

    public static func encode(_ tokenizer: Tokenizer) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        if let c = tokenizer as? CharTokenizer { return try e.encode(c) }
        if let ids = tokenizer as? TokenIDsOnly {
            struct Saved: Encodable { let kind = "ids", vocabularySize: Int, directory: String, reason: String }
            return try e.encode(Saved(vocabularySize: ids.vocabularySize, directory: ids.directory, reason: ids.reason))
        }
        if let b = tokenizer as? BPETokenizer, let directory = b.directory { return try e.encode(["kind": "bpe", "directory": directory]) }
        return try e.encode(["kind": "byte"])
    }
}

/// A corpus's token ids: 16-bit when every id fits (2 bytes a token: a 50 MB text takes 100 MB),
/// else 32-bit; a part of it (`slice`) shares the storage.
public struct TokenIDs: Sendable {
    private enum Storage: Sendable { case narrow([UInt16]), wide([Int32]), mapped(Data, width: Int) }
    private let storage: Storage
    /// The part of the storage this stream is.
    public let range: Range<Int>

    public init(_ ids: [Int32]) {
        if ids.allSatisfy({ $0 >= 0 && $0 <= Int32(UInt16.max) }) {
            storage = .narrow(ids.map { UInt16(truncatingIfNeeded: $0) })
        } else {
            storage = .wide(ids)
        }
        range = 0..<ids.count
    }

    /// A flat file of little-endian token ids, `bytesPerToken` (2 or 4) each, memory-mapped: a
    /// corpus of a gigabyte is paged in as windows are read, never copied. Every id is checked
    /// against `vocabularySize` (an error names the first that is not below it).
    public init(mapping path: String, bytesPerToken: Int, vocabularySize: Int) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw DataError.file(path, "cannot be read")
        }
        guard bytesPerToken == 2 || bytesPerToken == 4, data.count % bytesPerToken == 0, !data.isEmpty else {
            throw DataError.file(path, "is not a whole number of \(bytesPerToken)-byte token ids (\(data.count) bytes)")
        }
        let count = data.count / bytesPerToken
        let bad: Int? = data.withUnsafeBytes { raw in
            for i in 0..<count {
                let id = bytesPerToken == 2 ? Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    : Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                if id >= vocabularySize { return i }
            }
            return nil
        }
        if let bad { throw DataError.file(path, "holds token id at position \(bad) that is not below the vocabulary's \(vocabularySize): ids of another tokenizer, or another width?") }
        self.init(storage: .mapped(data, width: bytesPerToken), range: 0..<count)
    }

    private init(storage: Storage, range: Range<Int>) {
        self.storage = storage
        self.range = range
    }

    public var count: Int { range.count }
    /// Bytes a token takes (2 or 4).
    public var bytesPerToken: Int {
        switch storage {
        case .narrow: 2
        case .wide: 4
        case .mapped(_, let width): width
        }
    }

    /// Token `i` of this stream.
    public subscript(_ i: Int) -> Int {
        switch storage {
        case .narrow(let ids): Int(ids[range.lowerBound + i])
        case .wide(let ids): Int(ids[range.lowerBound + i])
        case .mapped(let data, let width):
            data.withUnsafeBytes { raw in
                let at = (range.lowerBound + i) * width
                return width == 2 ? Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                    : Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            }
        }
    }

    /// Writes the stream as a flat file of little-endian ids, `width` bytes each (2 or 4; by
    /// default this stream's `bytesPerToken`): what `init(mapping:)` reads, nanoGPT's format.
    /// Atomic, in pieces; returns the file's CRC-32.
    @discardableResult
    public func write(to path: String, width: Int? = nil) throws -> UInt32 {
        let width = width ?? bytesPerToken, piece = 1 << 16
        return try AtomicFile.write(to: path) { emit in
            var bytes = [UInt8](repeating: 0, count: piece * width)
            for start in stride(from: 0, to: count, by: piece) {
                let n = Swift.min(piece, count - start)
                bytes.withUnsafeMutableBytes { raw in
                    for i in 0..<n {
                        let id = self[start + i]
                        if width == 2 { raw.storeBytes(of: UInt16(id).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                        else { raw.storeBytes(of: UInt32(id).littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                    }
                }
                try bytes.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0.prefix(n * width))) }
            }
        }
    }

    /// Tokens `r` of this stream, sharing the storage.
    public func slice(_ r: Range<Int>) -> TokenIDs {
        TokenIDs(storage: storage, range: (range.lowerBound + r.lowerBound)..<(range.lowerBound + r.upperBound))
    }
}

/// Next-token samples over a token stream: sample `i` is the window of `blockSize` tokens and
/// the same window shifted by one as its targets, both int64 `[blockSize]`.
///
/// `TokenWindows(tokens, blockSize: T)` has a window at every offset (training: a sampler
/// shuffles the offsets, so every rank's shard of an epoch is disjoint from the others').
/// `TokenWindows(tokens, blockSize: T, covering: true)` tiles the stream with non-overlapping
/// windows so that every next-token prediction is made exactly once (evaluation): the last
/// window is aligned to the end and its targets already predicted are `ignoreIndex`.
public struct TokenWindows: Dataset, @unchecked Sendable {
    /// The stream; the splits of one corpus share its storage.
    public let tokens: TokenIDs
    public let blockSize: Int
    public let covering: Bool
    /// The target of a position another window already predicts (cross-entropy skips it).
    public static let ignoreIndex = -100

    public init(_ tokens: [Int], blockSize: Int, covering: Bool = false) throws {
        try self.init(ids: TokenIDs(tokens.map { Int32(truncatingIfNeeded: $0) }), blockSize: blockSize, covering: covering)
    }

    /// Windows over a part of a token stream, sharing its storage (no copy).
    public init(ids tokens: TokenIDs, blockSize: Int, covering: Bool = false) throws {
        guard blockSize >= 1 else { throw DataError("token windows need a block size of at least 1, got \(blockSize)") }
        guard tokens.count > blockSize else {
            throw DataError("\(tokens.count) tokens are too few for windows of \(blockSize) tokens and their next-token targets (need at least \(blockSize + 1))")
        }
        self.tokens = tokens
        self.blockSize = blockSize
        self.covering = covering
    }

    /// Next-token predictions in the stream (each made once by a covering set of windows).
    public var predictions: Int { tokens.count - 1 }

    public var count: Int {
        covering ? (predictions + blockSize - 1) / blockSize : tokens.count - blockSize
    }

    /// Where window `i` starts, and how many of its first targets another window predicts.
    private func window(_ i: Int) -> (start: Int, skip: Int) {
        guard covering else { return (i, 0) }
        let start = i * blockSize
        let last = tokens.count - 1 - blockSize
        return start <= last ? (start, 0) : (last, start - last)
    }

    public subscript(_ i: Int) -> (input: Tensor, target: Tensor) {
        let b = batch([i])
        return (b.input[0], b.target[0])
    }

    public func batch(_ indices: [Int]) -> (input: Tensor, target: Tensor) {
        var input = [Int](), target = [Int]()
        input.reserveCapacity(indices.count * blockSize)
        target.reserveCapacity(indices.count * blockSize)
        for i in indices {
            require(i >= 0 && i < count, "TokenWindows: window \(i) is out of range (\(count) windows)")
            let (start, skip) = window(i)
            for k in 0..<blockSize {
                input.append(tokens[start + k])
                target.append(k < skip ? Self.ignoreIndex : tokens[start + k + 1])
            }
        }
        return (Tensor(indices: input, shape: [indices.count, blockSize]), Tensor(indices: target, shape: [indices.count, blockSize]))
    }

    /// The number of targets the windows at `indices` count (all but the ignored ones).
    public func predictions(in indices: [Int]) -> Int {
        indices.reduce(0) { $0 + blockSize - window($1).skip }
    }
}

/// A text file's contents (plain, or gzip-compressed), as a String; invalid UTF-8 is an error
/// naming the file.
public enum TextFile {
    /// Bytes of memory a byte of text costs while a corpus is prepared: its bytes, the String,
    /// and a 32-bit token (at most one per byte).
    public static let bytesPerTextByte = 6

    public static func read(_ path: String) throws -> String {
        // The guard counts what the text will cost once decompressed and tokenized.
        let data = try FileBytes.read(path, limit: DataLimits.maxDecompressedBytes / bytesPerTextByte)
        // The standard library's validating decoder: one copy (Foundation's bridges through UTF-16).
        guard let text = String(validating: data, as: UTF8.self) else { throw DataError.file(path, "is not UTF-8 text") }
        guard !text.isEmpty else { throw DataError.file(path, "is empty") }
        return text
    }
}
