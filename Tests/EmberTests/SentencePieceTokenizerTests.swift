import XCTest
@testable import Ember

/// SentencePiece's kind of BPE as `transformers` converts Llama 2's (Fixtures/bpe-llama2*, from
/// scripts/generate_llama2_tokenizer_fixture.py) against the `tokenizers` library's ids and
/// decoding: both layouts, byte fallback, added tokens inside the text, runs of spaces and newlines.
final class SentencePieceTokenizerTests: XCTestCase {
    struct Cases: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String; let with_special_tokens: [Int] }
        let cases: [Case]
    }

    func testIdsAndDecodingEqualTheTokenizersLibrarysInBothLayouts() throws {
        for (name, cuts) in [("bpe-llama2", true), ("bpe-llama2-metaspace", false)] {
            let tokenizer = try BPETokenizer.fromPretrained(Fixture.url(name).path)
            XCTAssertNotNil(tokenizer.metaspace, name)
            // Trained on words, as Llama 2's was, its words merge alone; the other merges across spaces.
            XCTAssertEqual(tokenizer.cutsAtMarkers, cuts, name)
            XCTAssertEqual(tokenizer.promptPrefix, cuts ? [1] : [], name)
            for c in try Fixture.load(name + "/cases.json", as: Cases.self).cases {
                XCTAssertEqual(try tokenizer.encode(c.text), c.ids, "\(name): \(String(reflecting: c.text))")
                XCTAssertEqual(tokenizer.decode(c.ids), c.decoded, "\(name): \(String(reflecting: c.text))")
                // A prompt gets what the post-processor puts in front: Llama 2's <s> (the legacy one has it).
                XCTAssertEqual(try tokenizer.encodePrompt(c.text), c.with_special_tokens, "\(name): \(String(reflecting: c.text))")
            }
        }
    }

    /// Generation shows tokens as they come: the text of the first tokens and then the rest's
    /// continuation is the whole text's (only a text's start loses the space put in front).
    func testDecodingInPiecesGivesTheWholeText() throws {
        let tokenizer = try BPETokenizer.fromPretrained(Fixture.url("bpe-llama2").path)
        let ids = try tokenizer.encode("To be, or not to be, that is the question")
        for k in 1..<ids.count {
            XCTAssertEqual(tokenizer.decode(Array(ids[..<k])) + tokenizer.decodeContinuation(Array(ids[k...])), tokenizer.decode(ids), "split at \(k)")
        }
        XCTAssertEqual(tokenizer.decode(ids), "To be, or not to be, that is the question")
    }

    /// Llama 3's post-processor (a `Sequence` of `ByteLevel` and a template with
    /// `<|begin_of_text|>` in front) gives a prompt that token first, as `tokenizer(prompt)` does.
    func testAPromptGetsTheTemplatesTokensInFrontInsideASequenceToo() throws {
        let source = Fixture.url("bpe-llama3").path + "/tokenizer.json"
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source))) as? [String: Any])
        root["post_processor"] = ["type": "Sequence", "processors": [
            ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
            ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": "<|begin_of_text|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
             "pair": [], "special_tokens": ["<|begin_of_text|>": ["id": "<|begin_of_text|>", "ids": [399], "tokens": ["<|begin_of_text|>"]]]],
        ]]
        let temp = NSTemporaryDirectory() + "template-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: temp + "/tokenizer.json"))
        let tokenizer = try BPETokenizer.fromPretrained(temp)
        XCTAssertEqual(try tokenizer.encodePrompt("To be"), [399] + (try tokenizer.encode("To be")))
        XCTAssertEqual(try BPETokenizer.fromPretrained(Fixture.url("bpe").path).promptPrefix, [], "GPT-2's adds nothing")
    }

    /// What it cannot reproduce is named: a Metaspace that splits words itself, another normalizer.
    func testALayoutItCannotReproduceIsRefusedByName() throws {
        let source = Fixture.url("bpe-llama2-metaspace").path + "/tokenizer.json"
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source))) as? [String: Any])
        let temp = NSTemporaryDirectory() + "sp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        func refused(_ expected: String) throws {
            try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: temp + "/tokenizer.json"))
            XCTAssertThrowsError(try BPETokenizer.fromPretrained(temp)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        root["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true]
        try refused("split true")
        root["pre_tokenizer"] = NSNull()
        root["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFKC"], ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]]
        try refused("normalizer Sequence")
    }
}
