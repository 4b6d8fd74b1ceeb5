import Foundation

/// NumPy's `.npy` format (C order; float32, float64, int64, int32 and uint8 arrays).
public enum NPY {
    public static func read(_ path: String) throws -> Tensor {
        try decode(try FileBytes.read(path), path: path)
    }

    /// Decodes `.npy` bytes; every size in the header is checked against the data first.
    public static func decode(_ data: Data, path: String = "<data>") throws -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, String(bytes: bytes[1..<6], encoding: .ascii) == "NUMPY" else {
            throw DataError.file(path, "is not a .npy file (bad magic string)")
        }
        let major = bytes[6]
        guard (1...3).contains(major) else { throw DataError.file(path, "is .npy version \(major), which Ember does not read (1 to 3)") }
        guard major == 1 || bytes.count >= 12 else { throw DataError.file(path, ".npy header is truncated") }
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        let start = major == 1 ? 10 : 12
        guard bytes.count >= start + headerLength,
              let header = String(bytes: bytes[start..<(start + headerLength)], encoding: major == 3 ? .utf8 : .ascii) else {
            throw DataError.file(path, ".npy header is truncated")
        }
        guard let descr = field(header, "descr"), let shapeText = field(header, "shape") else {
            throw DataError.file(path, ".npy header lacks descr or shape: \(header)")
        }
        if field(header, "fortran_order") == "True" {
            throw DataError.file(path, "is in Fortran order; save it with numpy.ascontiguousarray first")
        }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = dims.compactMap { Int($0) }
        guard shape.count == dims.count else { throw DataError.file(path, ".npy shape \(shapeText) is not a tuple of integers") }
        let kind = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        let offset = start + headerLength
        let sizes: [String: Int] = ["<f4": 4, "<f8": 8, "<i8": 8, "<i4": 4, "|u1": 1, "<u1": 1, "|i1": 1]
        guard let size = sizes[kind] else {
            throw DataError.file(path, "unsupported dtype \(kind) (use float32, float64, int64, int32 or uint8, little-endian)")
        }
        let count = try DataLimits.elementCount(shape, elementSize: size, path: path)
        guard bytes.count - offset >= count * size else {
            throw DataError.file(path, "holds \(bytes.count - offset) data bytes, but shape \(shape) of \(kind) needs \(count * size)")
        }
        return bytes.withUnsafeBytes { raw -> Tensor in
            let p = raw.baseAddress! + offset
            func load<T>(_ type: T.Type) -> [T] {
                (0..<count).map { p.loadUnaligned(fromByteOffset: $0 * size, as: T.self) }
            }
            switch kind {
            case "<f4": return Tensor(load(Float.self).map(Double.init), shape: shape, dtype: .float32)
            case "<f8": return Tensor(load(Double.self), shape: shape, dtype: .float64)
            case "<i8": return Tensor(indices: load(Int64.self).map { Int($0) }, shape: shape)
            case "<i4": return Tensor(indices: load(Int32.self).map { Int($0) }, shape: shape)
            case "|i1": return Tensor(indices: load(Int8.self).map { Int($0) }, shape: shape)
            default: return Tensor(load(UInt8.self).map(Double.init), shape: shape, dtype: .float32)
            }
        }
    }

    /// Writes a tensor as a version 1.0 `.npy` file.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let descr = ["float32": "<f4", "float64": "<f8", "int64": "<i8"][tensor.dtype.rawValue]!
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(\(tensor.shape.map(String.init).joined(separator: ", ")))"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        // Pad so the data starts on a 64-byte boundary, ending the header with a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        data.append(contentsOf: [UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(bytes: tensor.dataPointer, count: tensor.count * tensor.dtype.byteSize))
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// The value text of `'key': value` in a header dict.
    private static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        let rest = header[r.upperBound...].trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("(") { return rest.firstIndex(of: ")").map { String(rest[...$0]) } }
        return rest.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
