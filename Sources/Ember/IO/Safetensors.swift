import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the raw little-endian data. Files Ember
/// writes load with `safetensors.torch.load_file`, and PyTorch-written files load here.
public enum Safetensors {
    /// Encodes tensors (keys sorted, data 8-byte aligned) with optional string metadata.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let keys = tensors.keys.sorted()
        for key in keys {
            let t = tensors[key]!
            let bytes = t.count * t.dtype.byteSize
            header[key] = ["dtype": t.dtype.safetensorsName, "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned.
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for key in keys {
            let t = tensors[key]!
            data.append(Data(bytes: t.dataPointer, count: t.count * t.dtype.byteSize))
        }
        return data
    }

    /// Writes atomically.
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }

    /// Decodes a safetensors file's tensors and metadata.
    /// - Throws: `DataError` naming the file for a truncated or malformed file or an unsupported dtype.
    public static func decode(_ data: Data, path: String = "<data>") throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard data.count >= 8 else { throw DataError.file(path, "is too short to be a safetensors file (truncated?)") }
        let headerLength = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerLength > 0, headerLength <= data.count - 8 else {
            throw DataError.file(path, "safetensors header length \(headerLength) exceeds the file (\(data.count) bytes): truncated or not safetensors")
        }
        let headerData = data.subdata(in: 8..<(8 + headerLength))
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw DataError.file(path, "safetensors header is not valid JSON")
        }
        let base = 8 + headerLength
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw DataError.file(path, "tensor '\(key)' has a malformed header entry")
            }
            guard let dtype = DType.allCases.first(where: { $0.safetensorsName == dtypeName }) else {
                throw DataError.file(path, "tensor '\(key)' has dtype \(dtypeName); Ember reads F32, F64 and I64")
            }
            let bytes = shape.reduce(1, *) * dtype.byteSize
            guard offsets[1] - offsets[0] == bytes, offsets[0] >= 0, base + offsets[1] <= data.count else {
                throw DataError.file(path, "tensor '\(key)' data range \(offsets) does not fit its shape \(shape) or the file: truncated?")
            }
            let t = Tensor.zeros(shape, dtype: dtype)
            data.withUnsafeBytes { raw in
                t.dataPointer.copyMemory(from: raw.baseAddress! + base + offsets[0], byteCount: bytes)
            }
            tensors[key] = t
        }
        return (tensors, metadata)
    }

    public static func load(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError.file(path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.file(path, "cannot be read") }
        return try decode(data, path: path)
    }
}
