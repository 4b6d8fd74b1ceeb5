import XCTest
@testable import Ember

/// Byte-level BPE against the `tokenizers` library's ids (Fixtures/bpe from
/// scripts/generate_bpe_fixture.py): multi-byte UTF-8, emoji, runs of spaces, tabs and newlines,
/// contractions, an added token, a long seeded mix of awkward pieces (CRLF, no-break spaces,
/// combining marks, ZWJ emoji, Arabic, Hangul); both file layouts and both merge spellings.
final class BPETokenizerTests: XCTestCase {
    struct Cases: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int] }
        let cases: [Case]
    }

    var directory: String { Fixture.url("bpe").path }

    func testIdsEqualTheTokenizersLibrarysAndDecodingGivesTheTextBack() throws {
        let cases = try Fixture.load("bpe/cases.json", as: Cases.self).cases
        let tokenizer = try BPETokenizer.fromPretrained(directory)
        for c in cases {
            XCTAssertEqual(try tokenizer.encode(c.text), c.ids, String(reflecting: c.text))
            XCTAssertEqual(tokenizer.decode(c.ids), c.text)
        }
    }

    /// GPT-2's own files (vocab.json and merges.txt with `"a b"` lines) and tokenizer.json with
    /// merges written as `["a", "b"]` pairs give the same ids.
    func testBothFileLayoutsAndMergeSpellingsAgree() throws {
        let cases = try Fixture.load("bpe/cases.json", as: Cases.self).cases
        let temp = NSTemporaryDirectory() + "bpe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: temp + "/" + name)
        }
        let gpt2Files = try BPETokenizer.fromPretrained(temp)
        // tokenizer.json with the other merge spelling.
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/tokenizer.json"))) as? [String: Any])
        var model = try XCTUnwrap(root["model"] as? [String: Any])
        let merges = try XCTUnwrap(model["merges"] as? [Any])
        model["merges"] = merges.map { m -> Any in
            if let s = m as? String { return s.split(separator: " ", maxSplits: 1).map(String.init) }
            return (m as! [String]).joined(separator: " ")
        }
        root["model"] = model
        let other = temp + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: other + "/tokenizer.json"))
        let otherSpelling = try BPETokenizer.fromPretrained(other)
        for c in cases where !c.text.contains("<|endoftext|>") {
            XCTAssertEqual(try gpt2Files.encode(c.text), c.ids, String(reflecting: c.text))
            XCTAssertEqual(try otherSpelling.encode(c.text), c.ids, String(reflecting: c.text))
        }
    }

    /// Llama 3's tokenizer.json (a Split by its pattern, then ByteLevel without one): the ids of
    /// the `tokenizers` library on the same texts and on its pattern's own cases (contractions in
    /// capitals, digits in threes, punctuation with its line breaks, CRLF runs).
    func testLlama3sPatternGivesTheTokenizersLibrarysWordsAndIds() throws {
        struct WordCases: Decodable {
            struct Case: Decodable { let text: String; let ids: [Int]; let words: [String] }
            let cases: [Case]
        }
        let cases = try Fixture.load("bpe-llama3/cases.json", as: WordCases.self).cases
        let tokenizer = try BPETokenizer.fromPretrained(Fixture.url("bpe-llama3").path)
        XCTAssertEqual(tokenizer.split, .llama3(digits: 3))
        for c in cases {
            let words = tokenizer.split.words(c.text).map { String($0.utf8.map(ByteLevel.character(of:))) }
            XCTAssertEqual(words, c.words, String(reflecting: c.text))
            XCTAssertEqual(try tokenizer.encode(c.text), c.ids, String(reflecting: c.text))
            XCTAssertEqual(tokenizer.decode(c.ids), c.text)
        }
        // Pieces cut where Llama 3's words allow split into the whole text's words.
        let text = cases.map(\.text).joined(separator: "!\n \t  ") + "  end.\n"
        for size in [1, 3, 7, 64] {
            var words: [String] = []
            tokenizer.split.pieces(of: text, size: size) { words += tokenizer.split.words($0) }
            XCTAssertEqual(words, tokenizer.split.words(text), "pieces of \(size)")
        }
    }

    /// Added tokens are cut out first: the earliest, and the longest of those starting at one
    /// place; text between them (multi-byte characters included) goes through BPE.
    func testAddedTokensAreMatchedEarliestThenLongest() throws {
        let bytes = Dictionary(uniqueKeysWithValues: (0..<256).map { (String(ByteLevel.character(of: UInt8($0))), $0) })
        let tokenizer = BPETokenizer(vocabulary: bytes, merges: [], addedTokens: ["<a>": 1000, "<a><b>": 1001, "b>": 1002, "é!": 1003])
        func id(_ s: String) -> [Int] { s.utf8.map(Int.init) }
        XCTAssertEqual(try tokenizer.encode("x<a><b>yb>z<a>"), id("x") + [1001] + id("y") + [1002] + id("z") + [1000])
        XCTAssertEqual(try tokenizer.encode("é<a>éé!ü"), id("é") + [1000] + id("é") + [1003] + id("ü"))
        XCTAssertEqual(tokenizer.decode(try tokenizer.encode("é<a>éé!ü<a><b>")), "é<a>éé!ü<a><b>")
    }

    func testATokenizerItCannotReproduceIsRefusedByName() throws {
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/tokenizer.json"))) as? [String: Any])
        root["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"]
        let temp = NSTemporaryDirectory() + "bpe-meta-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: temp + "/tokenizer.json"))
        XCTAssertThrowsError(try BPETokenizer.fromPretrained(temp)) { XCTAssertTrue("\($0)".contains("Metaspace"), "\($0)") }
        // A Split by a pattern other than GPT-2's and Llama 3's is named.
        root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Split", "pattern": ["Regex": "\\w+|\\s+"], "behavior": "Isolated", "invert": false],
                                                                        ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]]
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: temp + "/tokenizer.json"))
        XCTAssertThrowsError(try BPETokenizer.fromPretrained(temp)) {
            XCTAssertTrue("\($0)".contains(#"splits words by the pattern "\\w+|\\s+""#), "\($0)")
        }
    }

    /// A corpus is split in pieces where a non-space meets a space; the words are the whole text's.
    func testPiecesSplitIntoTheWholeTextsWords() throws {
        let cases = try Fixture.load("bpe/cases.json", as: Cases.self).cases
        let text = cases.map(\.text).joined(separator: " \n\t  ") + "  end  "
        for size in [1, 3, 7, 64] {
            var words: [String] = []
            WordSplit.gpt2.pieces(of: text, size: size) { words += ByteLevel.words($0) }
            XCTAssertEqual(words, ByteLevel.words(text), "pieces of \(size)")
        }
    }
}

extension BPETokenizerTests {
    /// A model without a tokenizer Ember reads trains on ids: its stand-in is saved and read back
    /// with the runs' tokenizers, refuses text by saying why, and shows ids.
    func testIdsWithoutATokenizerTravelWithTheRunAndRefuseText() throws {
        let ids = TokenIDsOnly(vocabularySize: 64, directory: "llama", reason: "llama: holds no tokenizer.json")
        let back = try SavedTokenizer.decode(SavedTokenizer.encode(ids))
        XCTAssertEqual(back as? TokenIDsOnly, ids)
        XCTAssertEqual(back.vocabularySize, 64)
        XCTAssertEqual(back.decode([17, 4]), "<17><4>")
        XCTAssertThrowsError(try back.encode("hello")) { XCTAssertTrue("\($0)".contains("holds no tokenizer.json"), "\($0)") }
    }
}
