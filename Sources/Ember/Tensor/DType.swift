/// The element type of a tensor.
///
/// `float32` is the default for everything a model computes; `float64` exists for gradcheck and
/// for users who need the precision; `int64` holds class labels and indices; `bfloat16` holds
/// values for storage and exchange (checkpoints, `to(.bfloat16)` and back): ops compute on
/// float32 and float64 and refuse a bfloat16 tensor with a message saying to convert it (mixed
/// precision is `autocast(.bfloat16)`, which runs the products on the CPU's bfloat16 units).
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32
    case float64
    case int64
    case bfloat16

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32: return 4
        case .float64, .int64: return 8
        case .bfloat16: return 2
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
        case .bfloat16: return "BF16"
        }
    }

    /// Why `op` cannot compute on this dtype (int64 or bfloat16), and what to do instead.
    func refusal(_ op: String) -> String {
        self == .bfloat16 ? Self.bfloat16Refused(op) : "\(op) needs a floating-point tensor (got \(self)); convert with .to(.float32)"
    }

    /// Why an op cannot take a bfloat16 tensor, and what to do instead.
    static func bfloat16Refused(_ what: String = "this op") -> String {
        "\(what) does not compute on bfloat16 tensors (they hold values for storage and exchange); convert first with .to(.float32), or run the model in float32 under autocast(.bfloat16) for bf16 products"
    }
}
