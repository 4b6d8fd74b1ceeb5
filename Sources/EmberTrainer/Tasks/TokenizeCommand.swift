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
        let ids = try BPETokenizer.fromPretrained(pretrained).encodeIDs(try TextFile.read(text))
        let width = vocabulary <= 1 << 16 ? 2 : 4
        var data = Data(count: ids.count * width)
        data.withUnsafeMutableBytes { raw in
            for (i, id) in ids.enumerated() {
                if width == 2 { raw.storeBytes(of: UInt16(id).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                else { raw.storeBytes(of: UInt32(id).littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            }
        }
        try AtomicFile.write(data, to: output)
        return (ids.count, width)
    }
}
