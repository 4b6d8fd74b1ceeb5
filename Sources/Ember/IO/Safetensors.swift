import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the raw little-endian data. Files Ember
/// writes load with `safetensors.torch.load_file`, and PyTorch-written files load here.
public enum Safetensors {
    /// Encodes tensors (keys sorted, data 8-byte aligned) with optional string metadata.
    /// `storing` names tensors to store in another element type (`"mask": .BOOL`, `"w": .BF16`).
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                              storing: [String: SafetensorsDType] = [:]) throws -> Data {
        let plan = try layout(tensors, metadata: metadata, storing: storing)
        var data = Data(capacity: plan.bytes)
        try stream(tensors, plan) { data.append(contentsOf: $0) }
        return data
    }

    /// Writes atomically, streaming each tensor from its memory (nothing of the size of the file
    /// is built first); returns the file's CRC-32.
    @discardableResult
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                            storing: [String: SafetensorsDType] = [:], to path: String) throws -> UInt32 {
        let plan = try layout(tensors, metadata: metadata, storing: storing)
        return try AtomicFile.write(to: path) { emit in try stream(tensors, plan, emit) }
    }

    /// The file's header (length, JSON padded to 8 bytes) and each tensor's stored type, by key.
    private struct Layout {
        let header: Data, entries: [(key: String, stored: SafetensorsDType)], bytes: Int
    }

    private static func layout(_ tensors: [String: Tensor], metadata: [String: String],
                               storing: [String: SafetensorsDType]) throws -> Layout {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0, entries: [(key: String, stored: SafetensorsDType)] = []
        for key in tensors.keys.sorted() {
            let t = tensors[key]!
            let stored = storing[key] ?? SafetensorsDType(rawValue: t.dtype.safetensorsName)!
            let bytes = t.count * stored.byteSize
            header[key] = ["dtype": stored.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
            entries.append((key, stored))
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))  // data 8-byte aligned
        var head = Data(capacity: 8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { head.append(contentsOf: $0) }
        head.append(json)
        return Layout(header: head, entries: entries, bytes: head.count + offset)
    }

    /// The header, then each tensor's bytes: straight from its memory, or converted (other types).
    private static func stream(_ tensors: [String: Tensor], _ plan: Layout, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try plan.header.withUnsafeBytes { try emit($0) }
        for (key, stored) in plan.entries {
            let t = tensors[key]!
            if stored.rawValue == t.dtype.safetensorsName {
                try emit(UnsafeRawBufferPointer(start: t.dataPointer, count: t.count * t.dtype.byteSize))
            } else {
                try stored.bytes(of: t, key: key).withUnsafeBytes { try emit($0) }
            }
        }
    }

    /// The largest header Ember reads (the reference implementation's limit too).
    static let maxHeaderBytes = 100_000_000

    /// Decodes a safetensors file's tensors and metadata. Every size is checked against the file
    /// before anything is allocated: the header length, each shape (non-negative, no overflow),
    /// and the data ranges, which must tile the data section exactly (in order, no overlap, no
    /// gap), as the format requires.
    /// Stored element types other than F32, F64, I64 and BF16 are converted (`SafetensorsDType.emberType`).
    /// - Throws: `DataError` naming the file for a truncated or malformed file or an unsupported dtype.
    public static func decode(_ data: Data, path: String = "<data>") throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file = try Contents(data, path: path)
        return (file.tensors(), file.metadata)
    }

    /// A safetensors file's checked header over its bytes: each tensor is decoded when asked for,
    /// so a model's weights can be read one tensor at a time from a mapped file (`open`) instead of
    /// all at once beside the model.
    public struct Contents {
        let data: Data, base: Int
        public let metadata: [String: String]
        let entries: [String: (dtype: SafetensorsDType, shape: [Int], begin: Int, end: Int)]

        /// Each tensor's name with the dtype and shape it decodes to, from the header alone.
        public var layout: [String: (dtype: DType, shape: [Int])] { entries.mapValues { ($0.dtype.emberType, $0.shape) } }

        /// The shape of the tensor `key` (one of `layout`'s keys).
        func shape(_ key: String) -> [Int] { entries[key]!.shape }

        /// Every tensor, decoded now.
        public func tensors() -> [String: Tensor] { Dictionary(uniqueKeysWithValues: entries.keys.map { ($0, tensor($0)) }) }

        /// The tensor `key` (it must be one of `layout`'s keys), decoded now.
        public func tensor(_ key: String) -> Tensor {
            let e = entries[key]!
            let t = Tensor(uninitializedShape: e.shape, dtype: e.dtype.emberType)
            data.withUnsafeBytes { raw in e.dtype.read(raw.baseAddress! + base + e.begin, count: t.count, into: t) }
            return t
        }

        init(_ data: Data, path: String) throws {
            guard data.count >= 8 else { throw DataError.file(path, "is too short to be a safetensors file (truncated?)") }
            let declared = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard declared > 0, declared <= UInt64(data.count - 8) else {
                throw DataError.file(path, "safetensors header length \(declared) exceeds the file (\(data.count) bytes): truncated or not safetensors")
            }
            let headerLength = Int(declared)
            guard headerLength <= maxHeaderBytes else {
                throw DataError.file(path, "safetensors header of \(headerLength) bytes is larger than any real one (\(maxHeaderBytes))")
            }
            let start = data.startIndex
            let headerData = data.subdata(in: (start + 8)..<(start + 8 + headerLength))
            guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw DataError.file(path, "safetensors header is not valid JSON")
            }
            (self.data, base) = (data, 8 + headerLength)
            metadata = (header["__metadata__"] as? [String: String]) ?? [:]
            entries = try Self.entries(header, dataBytes: data.count - base, path: path)
        }

        /// The header's tensors, checked: a known dtype, a shape that fits, data ranges that tile
        /// the data section exactly.
        private static func entries(_ header: [String: Any], dataBytes: Int, path: String) throws -> [String: (dtype: SafetensorsDType, shape: [Int], begin: Int, end: Int)] {
            var entries: [(key: String, dtype: SafetensorsDType, shape: [Int], begin: Int, end: Int)] = []
            for (key, value) in header where key != "__metadata__" {
                guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                      let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                    throw DataError.file(path, "tensor '\(key)' has a malformed header entry")
                }
                guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                    throw DataError.file(path, "tensor '\(key)' has dtype \(dtypeName); Ember reads \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let count = try DataLimits.elementCount(shape, elementSize: dtype.byteSize, path: "\(path): tensor '\(key)'")
                let bytes = count * dtype.byteSize
                guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] - offsets[0] == bytes, offsets[1] <= dataBytes else {
                    throw DataError.file(path, "tensor '\(key)' data range \(offsets) does not fit its shape \(shape) or the file: truncated?")
                }
                entries.append((key, dtype, shape, offsets[0], offsets[1]))
            }
            entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
            var next = 0
            for e in entries {
                guard e.begin == next else {
                    throw DataError.file(path, e.begin < next ? "tensor '\(e.key)' overlaps the tensor before it (bytes \(e.begin) onwards)"
                                                         : "the data section has a gap before tensor '\(e.key)' (bytes \(next)..<\(e.begin))")
                }
                next = e.end
            }
            guard next == dataBytes else {
                throw DataError.file(path, "the data section holds \(dataBytes) bytes but its tensors cover \(next): truncated or padded?")
            }
            return Dictionary(uniqueKeysWithValues: entries.map { ($0.key, ($0.dtype, $0.shape, $0.begin, $0.end)) })
        }
    }

    /// A safetensors file mapped into memory (its pages are read as tensors are decoded, and the
    /// system may drop them again), its header checked.
    public static func open(_ path: String) throws -> Contents {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError.file(path, "no such file") }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { throw DataError.file(path, "cannot be read") }
        return try Contents(data, path: path)
    }

    public static func load(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError.file(path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.file(path, "cannot be read") }
        return try decode(data, path: path)
    }
}
