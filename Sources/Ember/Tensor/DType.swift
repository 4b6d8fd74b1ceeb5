/// The element type of a tensor.
///
/// `float32` is the default for everything a model computes; `float64` exists for gradcheck and
/// for users who need the precision; `int64` holds class labels and indices.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32
    case float64
    case int64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32: return 4
        case .float64, .int64: return 8
        }
    }

    public var isFloatingPoint: Bool { self != .int64 }

    public var description: String { "torch.\(rawValue)" }

    /// The safetensors spelling of this type ("F32", "F64", "I64").
    public var safetensorsName: String {
        switch self {
        case .float32: return "F32"
        case .float64: return "F64"
        case .int64: return "I64"
        }
    }
}
