import Foundation

/// SentencePiece's kind of BPE as `transformers` converts it (Llama 2, TinyLlama, Mistral):
/// spaces become "▁", a "▁" goes in front, no byte-level alphabet and no word pattern: merges run
/// over the text's characters, and a character the vocabulary lacks becomes its UTF-8 bytes as the
/// tokens `<0x00>`…`<0xFF>` (byte fallback) or the unknown token. Decoding turns "▁" back into
/// spaces, the byte tokens back into bytes, and drops the space the encoding put in front.
public struct Metaspace: Sendable, Equatable {
    /// Where a "▁" goes in front of the text between added tokens.
    public enum Prepend: String, Sendable {
        /// Every such piece, even one that starts with "▁" (the legacy `Prepend` normalizer).
        case everyPiece
        /// Every piece that does not start with "▁" (`Metaspace`, `prepend_scheme: always`).
        case always
        /// The piece at the start of the text only, unless it starts with "▁" (`first`).
        case first
        case never
    }
    public let prepend: Prepend
    /// Characters outside the vocabulary become byte tokens (else the unknown token).
    public let byteFallback: Bool
    /// The unknown token's id, and whether unknown characters in a row share one.
    public let unknown: Int?, fusesUnknown: Bool
    /// Decoding drops one space at the start (the decoder's `Strip`).
    public let stripsLeadingSpace: Bool

    static let marker = "▁"

    /// The piece of text (between added tokens; `atStart`: at the text's start) as the merges see it.
    func normalized(_ piece: String, atStart: Bool) -> String {
        guard !piece.isEmpty else { return piece }
        let text = piece.replacingOccurrences(of: " ", with: Self.marker)
        switch prepend {
        case .everyPiece: return Self.marker + text
        case .always where !text.hasPrefix(Self.marker): return Self.marker + text
        case .first where atStart && !text.hasPrefix(Self.marker): return Self.marker + text
        case .always, .first, .never: return text
        }
    }

    /// A normalized piece's words, one at a time (a corpus never holds all of them): cut before
    /// each "▁" that follows another character where no merge joins across such a place (`cuts`;
    /// SentencePiece trains on words, so Llama 2's never does), so words merge alone and repeated
    /// ones are merged once. Otherwise the whole piece is one word.
    static func forEachWord(_ text: String, cuts: Bool, _ body: (String) throws -> Void) rethrows {
        guard cuts else { return try body(text) }
        var word = String.UnicodeScalarView(), previous: Unicode.Scalar? = nil
        let marker = Self.marker.unicodeScalars.first!
        for scalar in text.unicodeScalars {
            if scalar == marker, let p = previous, p != marker, !word.isEmpty {
                try body(String(word))
                word = String.UnicodeScalarView()
            }
            word.append(scalar)
            previous = scalar
        }
        if !word.isEmpty { try body(String(word)) }
    }

    /// Whether no merge makes a token with "▁" after another character.
    static func cutsAtMarkers(_ merges: [(String, String)]) -> Bool {
        let marker = Self.marker.unicodeScalars.first!
        return !merges.contains { a, b in
            let s = Array((a + b).unicodeScalars)
            return s.indices.dropFirst().contains { s[$0] == marker && s[$0 - 1] != marker }
        }
    }

    /// The ids of a merged word's parts: the vocabulary's, else byte tokens or the unknown token.
    func ids(of parts: [String], vocabulary: [String: Int], word: String) throws -> [Int] {
        var ids: [Int] = [], lastWasUnknown = false
        for part in parts {
            if let id = vocabulary[part] { ids.append(id); lastWasUnknown = false; continue }
            let bytes = byteFallback ? part.utf8.compactMap { vocabulary[String(format: "<0x%02X>", $0)] } : []
            if byteFallback, bytes.count == part.utf8.count {
                ids += bytes
                lastWasUnknown = false
                continue
            }
            guard let unknown else { throw DataError("BPE: '\(part)' of \(String(reflecting: word)) is not in the vocabulary, which has no unknown token") }
            if !(fusesUnknown && lastWasUnknown) { ids.append(unknown) }
            lastWasUnknown = true
        }
        return ids
    }

    /// A token's bytes when decoding: a byte token's byte, else its text with "▁" as spaces.
    func bytes(of token: String) -> [UInt8] {
        if byteFallback, token.utf8.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"),
           let b = UInt8(token.dropFirst(3).prefix(2), radix: 16) {
            return [b]
        }
        return Array(token.replacingOccurrences(of: Self.marker, with: " ").utf8)
    }
}
