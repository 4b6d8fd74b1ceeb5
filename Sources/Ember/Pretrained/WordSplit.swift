/// How byte-level BPE cuts text into words before merging: the `tokenizers` library's pattern of
/// the tokenizer, reproduced by hand (no regex engine, so it is fast and exactly that pattern).
public enum WordSplit: Equatable, Sendable {
    /// GPT-2's: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// Llama 3's (tiktoken's cl100k pattern; Qwen2's with `digits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    case llama3(digits: Int)

    /// The `Split` patterns of tokenizer.json this reproduces.
    static func named(pattern: String) -> WordSplit? {
        for digits in [3, 1] where pattern == llama3Pattern(digits: digits) { return .llama3(digits: digits) }
        return nil
    }

    static func llama3Pattern(digits: Int) -> String {
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"# + (digits == 1 ? "" : "{1,\(digits)}")
            + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }

    /// The words of `text`, in order.
    func words(_ text: String) -> [String] {
        switch self {
        case .gpt2: ByteLevel.words(text)
        case .llama3(let digits): Self.llama3Words(text, digits: digits)
        }
    }

    /// `text` in pieces of about `size` scalars, each cut where no word of the pattern spans: a
    /// non-space followed by a space (GPT-2), or by a space that is not a line break (Llama 3,
    /// whose punctuation takes the line breaks after it). The pieces split into the words of the whole.
    func pieces(of text: String, size: Int = 1 << 16, _ body: (String) throws -> Void) rethrows {
        let newlinesAttach = self != .gpt2
        var piece = String.UnicodeScalarView(), count = 0, previousIsSpace = true
        for scalar in text.unicodeScalars {
            let isSpace = scalar.properties.isWhitespace
            if isSpace && !previousIsSpace && count >= size && !(newlinesAttach && (scalar == "\r" || scalar == "\n")) {
                try body(String(piece))
                (piece, count) = (String.UnicodeScalarView(), 0)
            }
            piece.append(scalar)
            count += 1
            previousIsSpace = isSpace
        }
        if !piece.isEmpty { try body(String(piece)) }
    }

    /// Llama 3's words: each alternative of the pattern tried in order at each position.
    static func llama3Words(_ text: String, digits: Int) -> [String] {
        let s = Array(text.unicodeScalars), n = s.count
        func kind(_ i: Int) -> ByteLevel.Kind { ByteLevel.kind(s[i]) }
        func isNewline(_ i: Int) -> Bool { s[i] == "\r" || s[i] == "\n" }
        func run(from j: Int, while k: ByteLevel.Kind) -> Int {
            var e = j
            while e < n && kind(e) == k { e += 1 }
            return e
        }
        var out: [String] = [], i = 0
        while i < n {
            let end: Int
            if let e = contraction(s, at: i) {
                end = e
            } else if kind(i) == .letter {
                end = run(from: i, while: .letter)
            } else if kind(i) != .number, !isNewline(i), i + 1 < n, kind(i + 1) == .letter {
                end = run(from: i + 1, while: .letter)  // one non-letter, non-digit, non-newline before letters
            } else if kind(i) == .number {
                end = min(run(from: i, while: .number), i + digits)
            } else if kind(i) == .other || (s[i] == " " && i + 1 < n && kind(i + 1) == .other) {
                var e = run(from: s[i] == " " ? i + 1 : i, while: .other)
                while e < n && isNewline(e) { e += 1 }  // punctuation keeps the line breaks after it
                end = e
            } else {
                let e = run(from: i, while: .space)
                if let last = (i..<e).last(where: isNewline) {
                    end = last + 1  // \s*[\r\n]+: through the run's last line break
                } else {
                    end = e < n && e - i > 1 ? e - 1 : e  // \s+(?!\S), else \s+
                }
            }
            var word = String.UnicodeScalarView()
            word.append(contentsOf: s[i..<end])
            out.append(String(word))
            i = end
        }
        return out
    }

    /// The end of a contraction (`'s`, `'RE`, …, any case) starting at `i`, if one does.
    private static func contraction(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        guard s[i] == "'" else { return nil }
        for c in ByteLevel.contractions {
            let u = Array(c.unicodeScalars)
            guard i + 1 + u.count <= s.count else { continue }
            if zip(s[(i + 1)...], u).allSatisfy({ String($0.0).lowercased() == String($0.1) }) { return i + 1 + u.count }
        }
        return nil
    }
}
