import Ember
import Foundation

/// `trainer tokenize`: a text corpus through a pretrained model's tokenizer into a flat file of
/// little-endian ids (uint16, or uint32 past 65,536 tokens), nanoGPT's `prepare.py` format, which
/// `--data tokens:PATH` maps instead of tokenizing at every start.
public enum CorpusTokenizing {
    /// Tokenizes `text` (a path, plain or gzipped) with the tokenizer of `pretrained` into `output`;
    /// returns the number of tokens and their width in bytes.
    public static func write(pretrained: String, text: String, to output: String) throws -> (tokens: Int, bytesPerToken: Int) {
        let vocabulary = try PretrainedConfig.load(pretrained).vocabularySize
        let ids = TokenIDs(try BPETokenizer.fromPretrained(pretrained).encodeIDs(try TextFile.read(text)))
        let width = vocabulary <= 1 << 16 ? 2 : 4
        try ids.write(to: output, width: width)
        return (ids.count, width)
    }
}
