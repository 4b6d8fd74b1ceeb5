import Foundation

/// The element types a safetensors file may store, beyond Ember's own four. Reading converts
/// them to Ember's: integers and booleans (PyTorch's masks) to int64, half to float32 (BF16
/// reads as Ember's bfloat16, as PyTorch reads it); writing can store a tensor in one of them
/// (`Safetensors.encode(_:storing:)`: a float32 tensor as `.BF16` is rounded to nearest even).
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    public var byteSize: Int {
        switch self {
        case .F64, .I64: 8
        case .F32, .I32: 4
        case .F16, .BF16, .I16: 2
        case .I8, .U8, .BOOL: 1
        }
    }

    /// The Ember dtype a tensor stored this way becomes.
    public var emberType: DType {
        switch self {
        case .F64: .float64
        case .F32, .F16: .float32
        case .BF16: .bfloat16
        case .I64, .I32, .I16, .I8, .U8, .BOOL: .int64
        }
    }

    /// Converts `count` stored elements at `raw` into `t` (of `emberType`).
    func read(_ raw: UnsafeRawPointer, count: Int, into t: Tensor) {
        func each<S, D>(_: S.Type, _ out: UnsafeMutablePointer<D>, _ convert: (S) -> D) {
            for i in 0..<count { out[i] = convert(raw.loadUnaligned(fromByteOffset: i * MemoryLayout<S>.size, as: S.self)) }
        }
        switch self {
        case .F64, .F32, .I64, .BF16: t.dataPointer.copyMemory(from: raw, byteCount: count * byteSize)
        case .F16: each(Float16.self, t.pointer(Float.self)) { Float($0) }
        case .I32: each(Int32.self, t.pointer(Int64.self)) { Int64($0) }
        case .I16: each(Int16.self, t.pointer(Int64.self)) { Int64($0) }
        case .I8: each(Int8.self, t.pointer(Int64.self)) { Int64($0) }
        case .U8: each(UInt8.self, t.pointer(Int64.self)) { Int64($0) }
        case .BOOL: each(UInt8.self, t.pointer(Int64.self)) { $0 == 0 ? 0 : 1 }
        }
    }

    /// `t`'s elements stored this way; throws naming `key` when a value does not fit.
    func bytes(of t: Tensor, key: String) throws -> Data {
        guard t.dtype == emberType || (self == .BF16 && t.dtype == .float32) else {
            throw DataError("tensor '\(key)' is \(t.dtype); it cannot be stored as \(rawValue)")
        }
        func each<S>(_ convert: (Int) throws -> S) rethrows -> Data {
            var out = Data(count: t.count * MemoryLayout<S>.size)
            try out.withUnsafeMutableBytes { raw in
                for i in 0..<t.count { raw.storeBytes(of: try convert(i), toByteOffset: i * MemoryLayout<S>.size, as: S.self) }
            }
            return out
        }
        func integer<S: FixedWidthInteger>(_: S.Type) throws -> Data {
            let p = t.pointer(Int64.self)
            return try each { i in
                guard let v = S(exactly: p[i]) else { throw DataError("tensor '\(key)' holds \(p[i]), which \(rawValue) cannot store") }
                return v
            }
        }
        switch self {
        case .BF16 where t.dtype == .float32: let p = t.pointer(Float.self); return each { BFloat16.bits(p[$0]) }
        case .F64, .F32, .I64, .BF16: return Data(bytes: t.dataPointer, count: t.count * byteSize)
        case .F16: let p = t.pointer(Float.self); return each { Float16(p[$0]) }
        case .I32: return try integer(Int32.self)
        case .I16: return try integer(Int16.self)
        case .I8: return try integer(Int8.self)
        case .U8: return try integer(UInt8.self)
        case .BOOL:
            let p = t.pointer(Int64.self)
            return try each { i in
                guard p[i] == 0 || p[i] == 1 else { throw DataError("tensor '\(key)' holds \(p[i]); BOOL stores 0 and 1 only") }
                return UInt8(p[i])
            }
        }
    }
}
