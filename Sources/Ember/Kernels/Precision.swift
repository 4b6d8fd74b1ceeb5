import CEmberProducts

/// The precision float32 matrix products run in. Under `.bfloat16` (PyTorch's
/// `torch.autocast("cpu", dtype=torch.bfloat16)`) every float32 product (Linear, matmul and bmm,
/// convolution, attention, the recurrent layers), forward and backward, multiplies its operands
/// rounded to bfloat16 (nearest, ties to even) and accumulates in float32, on the CPU's bfloat16
/// units (AMX, AVX512_BF16) through oneDNN. Everything else stays float32: weights, gradients and
/// their accumulation, optimizer state, reductions, softmax, normalisation statistics, losses.
public enum Precision: String, Sendable, CaseIterable {
    case float32 = "fp32"
    case bfloat16 = "bf16"

    /// The precision products run in on this thread now (`autocast` changes it for a scope).
    public static var current: Precision { ember_products_bf16() != 0 ? .bfloat16 : .float32 }

    /// Whether this CPU multiplies bfloat16 natively; elsewhere `.bfloat16` is emulated (the same
    /// roundings, float32 products: slower than float32).
    public static var bfloat16IsNative: Bool { ember_bf16_available() != 0 }

    /// Whether the CPU has bfloat16 units at all (they may still be out of oneDNN's reach, as
    /// under `DNNL_MAX_CPU_ISA=AVX2`).
    public static var cpuHasBfloat16Units: Bool { ember_cpu_has_bf16() != 0 }

    /// What bfloat16 products run on: `amx`, `avx512_bf16`, or nil (emulated: the CPU has
    /// neither, or oneDNN may not use them, as under `DNNL_MAX_CPU_ISA=AVX2`).
    public static var bfloat16Units: String? {
        guard bfloat16IsNative else { return nil }
        return switch ProductEngine.oneDNNInstructions {
        case "avx512_core_amx": "amx"
        case "avx512_core_bf16": "avx512_bf16"
        default: nil
        }
    }
}

/// Runs `body` with float32 matrix products in `precision` on this thread (and the worker threads
/// Ember's kernels spread a product over), then restores the previous precision, like
/// `with torch.autocast("cpu", dtype=torch.bfloat16):`. Scopes nest.
public func autocast<R>(_ precision: Precision, _ body: () throws -> R) rethrows -> R {
    let previous = ember_products_set_bf16(precision == .bfloat16 ? 1 : 0)
    defer { ember_products_set_bf16(previous) }
    return try body()
}
