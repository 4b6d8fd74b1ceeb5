import CEmberProducts
import CEmberSupport

/// One layer of a recurrent network in one direction, over a whole sequence: the input
/// projection of every time step is one matrix product, each step one product for all gates and
/// one pass of gate arithmetic, and backward through time runs the same way (no graph node per
/// elementwise op). Sequences of unequal length: a batch row stops changing after its length
/// (its outputs there are zero); in reverse it starts at its last valid step.
enum RecurrentCell: Sendable, Equatable {
    case rnnTanh, rnnRelu, lstm, gru

    /// Gate blocks of `hiddenSize` in the weight matrices (LSTM i, f, g, o; GRU r, z, n).
    var gates: Int {
        switch self {
        case .rnnTanh, .rnnRelu: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }
}

/// What the forward pass keeps for the backward pass (all row-major, by processing step `s`
/// unless noted): activated gates `[T, N, G·H]`, states `h` before each step and after the last
/// `[T+1, N, P]`, LSTM cells `[T+1, N, H]`, GRU's `W_hn h + b_hn` `[T, N, H]`, the LSTM's
/// unprojected `o·tanh(c)` `[T, N, H]` when it projects. Raw buffers: the step loops index them
/// without bounds checks.
/// Under bfloat16 products the tape also keeps the input and the states `h` as the products
/// rounded them in forward, for backward's weight products (`roundedX`, `roundedHs`).
final class RecurrentTape<T: FloatElement> {
    let gates: UnsafeMutablePointer<T>, hs: UnsafeMutablePointer<T>, cs: UnsafeMutablePointer<T>
    let hhn: UnsafeMutablePointer<T>, raw: UnsafeMutablePointer<T>
    let roundedX: Tensor?, roundedHs: Tensor?
    private let counts: [Int]

    init(_ d: RecurrentShape, projects: Bool) {
        let (tn, n, h, p) = (d.steps * d.batch, d.batch, d.hidden, d.output)
        counts = [tn * d.gateWidth, (d.steps + 1) * n * p, d.cell == .lstm ? (d.steps + 1) * n * h : 0,
                  d.cell == .gru ? tn * h : 0, projects ? tn * h : 0]
        // Every step writes every row unless lengths stop some: only then must the rest be zero.
        let buffers = counts.map { d.lengths == nil ? RecurrentTape.uninitialized($0) : RecurrentTape.zeroed($0) }
        (gates, hs, cs, hhn, raw) = (buffers[0], buffers[1], buffers[2], buffers[3], buffers[4])
        (roundedX, roundedHs) = (Kernels.bfloat16Buffer([tn * d.input], for: T.self), Kernels.bfloat16Buffer([tn * p], for: T.self))
    }

    deinit { for (b, count) in zip([gates, hs, cs, hhn, raw], counts) { RecurrentTape.release(b, count) } }

    /// `count` zeroed values from the caching allocator: a training step reuses the pages of the
    /// last one instead of taking fresh ones from the kernel (a tenth of an LSTM step faulting
    /// pages in when these came from `malloc`).
    static func zeroed(_ count: Int) -> UnsafeMutablePointer<T> {
        let b = uninitialized(count)
        b.initialize(repeating: 0, count: Swift.max(count, 1))
        return b
    }

    static func uninitialized(_ count: Int) -> UnsafeMutablePointer<T> {
        BufferCache.shared.take(Swift.max(count, 1) * MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: Swift.max(count, 1))
    }

    /// `into[i] += values[i]`, vectorised for float32 (this generic loop stays scalar).
    static func add(_ values: UnsafePointer<T>, into target: UnsafeMutablePointer<T>, _ count: Int) {
        if T.self == Float.self {
            let t = UnsafeMutableRawPointer(target).assumingMemoryBound(to: Float.self)
            ember_add_f32(t, t, UnsafeRawPointer(values).assumingMemoryBound(to: Float.self), count)
        } else {
            for i in 0..<count { target[i] += values[i] }
        }
    }

    static func release(_ b: UnsafeMutablePointer<T>, _ count: Int) {
        BufferCache.shared.give(UnsafeMutableRawPointer(b), Swift.max(count, 1) * MemoryLayout<T>.stride)
    }
}

/// A product with the recurrent weight, which stays the same for the whole sequence: `C = A·Wᵀ`
/// (forward, W `[n, k]`) or `C = A·W` (backward, W `[k, n]`), A `[m, k]` and C `[m, n]`
/// contiguous. The weight is laid out once for all the steps: under bfloat16 autocast rounded
/// and packed by oneDNN (`ember_pack_weight_bf16`: 20–25% faster steps than repacking it at each);
/// for float32 on AVX-512 with `n` a multiple of 32 by Ember's own kernel
/// (`ember_pack_product_f32`: an LSTM of 256, 1.5× faster than OpenBLAS repacking 1 MB a call);
/// otherwise each step is an ordinary product.
struct RecurrentProduct<T: FloatElement> {
    let w: UnsafePointer<T>, m: Int, n: Int, k: Int, transposed: Bool
    private let packed: UnsafeMutablePointer<Float>?
    private let packedBF16: OpaquePointer?

    init(_ w: UnsafePointer<T>, m: Int, n: Int, k: Int, transposed: Bool) {
        (self.w, self.m, self.n, self.k, self.transposed) = (w, m, n, k, transposed)
        if Kernels.roundsOperands(T.self), m > 0, k > 0,
           let p = ember_pack_weight_bf16(transposed ? 1 : 0, m, n, k, k, n, floats(w), transposed ? k : n) {
            (packedBF16, packed) = (p, nil)
            return
        }
        packedBF16 = nil
        guard T.self == Float.self, n % 32 == 0, k > 0, ember_packed_product_available() != 0 else { packed = nil; return }
        let p = BufferCache.shared.take(n * k * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: n * k)
        ember_pack_product_f32(floats(w), k, n, transposed ? 1 : 0, p)
        packed = p
    }

    /// Whether the weight was packed for bfloat16 products (tests).
    var packedForBFloat16: Bool { packedBF16 != nil }

    /// `c = a · B`; `roundedA`: `a` already rounded to bfloat16, under bfloat16 products.
    func callAsFunction(_ a: UnsafePointer<T>, roundedA: UnsafePointer<UInt16>? = nil, into c: UnsafeMutablePointer<T>) {
        let flops = 2 * m * n * k
        if let packedBF16, ember_products_bf16() != 0, KernelProfile.countingProduct(flops: flops, {
            ember_gemm_packed_bf16(packedBF16, roundedA.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(a), roundedA == nil ? 0 : 1, floats(c)) == 0
        }) {
            return
        }
        // The float32 packed kernel, outside bfloat16 autocast.
        guard let packed, ember_products_bf16() == 0 else {
            return Kernels.gemm(false, transposed, m: m, n: n, k: k, ProductOperand(a, rounded: roundedA), lda: k,
                                ProductOperand(w), ldb: transposed ? k : n, beta: 0, c, ldc: n)
        }
        KernelProfile.countingProduct(flops: flops) { ember_packed_product_f32(m, n, k, floats(a), k, packed, floats(c), n) }
    }

    func release() {
        if let packed { BufferCache.shared.give(UnsafeMutableRawPointer(packed), n * k * MemoryLayout<Float>.stride) }
        ember_free_packed_weight(packedBF16)
    }
}

/// A float32 view of a generic buffer, for the C kernels of the float32 paths.

struct RecurrentShape {
    let steps: Int, batch: Int, input: Int, hidden: Int, output: Int, cell: RecurrentCell, reverse: Bool
    let lengths: [Int]?
    /// The outputs (and their gradients) `[N, T, P]` instead of `[T, N, P]`: a batch-first
    /// layer's last outputs go straight where the caller wants them, with no transposing copy.
    var batchFirstOutput = false
    var gateWidth: Int { cell.gates * hidden }
    /// The row of the outputs holding time `t` of batch row `n`.
    func outputRow(_ t: Int, _ n: Int) -> Int { batchFirstOutput ? n * steps + t : t * batch + n }
    /// Rows between one batch row's output and the next's at one time.
    var outputRowStride: Int { batchFirstOutput ? steps : 1 }
    /// The time index of processing step `s`.
    func time(_ s: Int) -> Int { reverse ? steps - 1 - s : s }
    func active(_ n: Int, _ t: Int) -> Bool { t < (lengths?[n] ?? steps) }
}

