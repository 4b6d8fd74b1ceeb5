import Ember
import Foundation

/// A text corpus's ids under a pretrained model's tokenizer, kept beside the run
/// (`RUN/tokens/<corpus>-<key>.bin`, the flat format `trainer tokenize` writes, with a small
/// `.json` holding its count and CRC-32), so a restart or a resume maps them instead of
/// tokenizing the corpus again. The key covers the corpus file (absolute path, size,
/// modification time) and the tokenizer's files (their bytes): a changed corpus or tokenizer is
/// tokenized afresh. A cache that does not verify (cut short, edited) is ignored, never trusted.
struct TokenCache {
    let path: String

    init(runDirectory: String, text: String, pretrained: String) throws {
        let url = URL(fileURLWithPath: text).standardizedFileURL
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        var fingerprint = "\(url.path)|\((attributes?[.size] as? NSNumber)?.int64Value ?? -1)"
        fingerprint += "|\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        for file in ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"] {
            let data = FileManager.default.contents(atPath: (pretrained as NSString).appendingPathComponent(file))
            fingerprint += "|\(file):\(data.map { Checksum.crc32($0) }.map(String.init) ?? "-")"
        }
        let hash = Checksum.fnv1a(fingerprint)
        let name = url.deletingPathExtension().lastPathComponent.replacingOccurrences(of: ".txt", with: "")
        path = (runDirectory as NSString).appendingPathComponent("tokens/\(name)-\(String(hash, radix: 16)).bin")
    }

    private var recordPath: String { (path as NSString).deletingPathExtension + ".json" }

    private struct Record: Codable { let tokens: Int; let bytesPerToken: Int; let crc32: UInt32 }

    /// The cached ids, mapped, when the cache is there and verifies; nil otherwise.
    func load(vocabularySize: Int) -> TokenIDs? {
        guard let json = FileManager.default.contents(atPath: recordPath),
              let record = try? JSONDecoder().decode(Record.self, from: json),
              let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped),
              data.count == record.tokens * record.bytesPerToken, Checksum.crc32(data) == record.crc32 else { return nil }
        return try? TokenIDs(mapping: path, bytesPerToken: record.bytesPerToken, vocabularySize: vocabularySize)
    }

    /// Keeps `ids` (the ids first, then the record that vouches for them).
    func write(_ ids: TokenIDs) throws {
        let crc = try ids.write(to: path)
        try AtomicFile.write(try JSONEncoder().encode(Record(tokens: ids.count, bytesPerToken: ids.bytesPerToken, crc32: crc)), to: recordPath)
    }
}
