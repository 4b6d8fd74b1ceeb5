import Foundation

/// A record whose task metrics (`extra`: `val_perplexity`, `train_tokens`) sit flat beside its
/// fixed fields in the files people read (`metrics.jsonl`, `summary.json`). The compiler codes
/// the record, with `extra` under its own key (as checkpoints keep it); these functions move
/// the metrics out to the top level for those files, and back in for older checkpoints that
/// kept them flat.
protocol FlatRecord: Codable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

extension FlatRecord {
    /// The record as JSON with `extra`'s entries at the top level.
    static func flatJSON(_ record: Self, encoder: JSONEncoder) throws -> Data {
        var object = try JSONSerialization.jsonObject(with: encoder.encode(record)) as! [String: Any]
        let extra = object.removeValue(forKey: "extra") as? [String: Any] ?? [:]
        object.merge(extra) { fixed, _ in fixed }
        var options: JSONSerialization.WritingOptions = [.sortedKeys]
        if encoder.outputFormatting.contains(.prettyPrinted) { options.insert(.prettyPrinted) }
        return try JSONSerialization.data(withJSONObject: object, options: options)
    }

    /// A flat record's JSON object with the entries that are not fixed fields gathered under
    /// `extra` (unchanged when it has `extra` already).
    static func nested(_ object: [String: Any]) -> [String: Any] {
        guard object["extra"] == nil else { return object }
        let fixed = Set(CodingKeys.allCases.map(\.stringValue))
        var nested = object.filter { fixed.contains($0.key) }
        nested["extra"] = object.filter { !fixed.contains($0.key) && ($0.value is NSNumber || $0.value is String) }
        return nested
    }
}
