import Foundation

/// The ids of a pretrained model whose directory holds no tokenizer Ember reads (none at all,
/// or a kind it refuses, such as SentencePiece's): training on ids made elsewhere
/// (`--data tokens:PATH`, from the `tokenizers` library or nanoGPT's `prepare.py`) needs no
/// tokenizer, but text in or out does, and says so.
public struct TokenIDsOnly: Tokenizer, Codable, Equatable {
    public let vocabularySize: Int
    /// The model directory, and why its tokenizer is not read.
    public let directory: String
    public let reason: String

    public init(vocabularySize: Int, directory: String, reason: String) {
        (self.vocabularySize, self.directory, self.reason) = (vocabularySize, directory, reason)
    }

    public func encode(_ text: String) throws -> [Int] {
        throw DataError("\(reason); a run on its token ids cannot turn text into ids (give the directory a tokenizer.json, or prepare ids with the model's own tokenizer)")
    }

    /// Ids in angle brackets (`<17><4>`): without a tokenizer there is no text to show.
    public func decode(_ tokens: [Int]) -> String { tokens.map { "<\($0)>" }.joined() }
}
