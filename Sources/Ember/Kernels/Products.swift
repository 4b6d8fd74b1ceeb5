import CEmberProducts
import Synchronization

/// Which library multiplies matrices on this machine, and with which instructions. This is the
/// one place that knows: ops call `Kernels.gemm`, which asks here.
///
/// float32 products run on oneDNN's matmul primitive, whose JIT chooses its kernels from the
/// CPU's feature flags (AMX, AVX-512, AVX2, SSE4.1) rather than from a table of CPU models, so a
/// CPU newer than the library still gets its best instructions. float64 products (gradcheck,
/// fixtures) run on OpenBLAS, whose float64 kernels oneDNN does not have.
public enum ProductEngine {
    public enum Library: String, Sendable {
        case onednn, openblas
    }

    /// The library for float32 products: oneDNN where it starts, else OpenBLAS. Settable (by
    /// launch code or a benchmark) to compare the two; process-wide.
    public static var float32: Library {
        get { Library(rawValue: chosen.load(ordering: .relaxed) == 0 ? "onednn" : "openblas")! }
        set {
            if newValue == .onednn, ember_products_available() == 0 { stop("oneDNN did not start on this machine") }
            chosen.store(newValue == .onednn ? 0 : 1, ordering: .relaxed)
        }
    }
    private static let chosen = Atomic<Int>(ember_products_available() != 0 ? 0 : 1)

    /// What float32 products run on, `library:instructions`: `onednn:avx512_core_amx`,
    /// `onednn:avx512_core`, `openblas:SkylakeX`. Benchmarks and the start-up log print it.
    public static var description: String {
        switch float32 {
        case .onednn: "onednn:\(oneDNNInstructions)"
        case .openblas: "openblas:\(blasKernel)"
        }
    }

    /// What float64 products run on (OpenBLAS's kernel family).
    public static var float64Description: String { "openblas:\(blasKernel)" }

    /// The best instruction set this CPU has for products, in oneDNN's names.
    public static var cpuInstructions: String { String(cString: ember_cpu_isa()) }

    /// The best instruction set oneDNN may use here: the CPU's, unless `DNNL_MAX_CPU_ISA` caps it.
    public static var oneDNNInstructions: String { String(cString: ember_products_isa()) }

    /// oneDNN's version ("2.6.3").
    public static var oneDNNVersion: String { String(cString: ember_products_version()) }

    /// The kernel oneDNN chose for the last product the calling thread prepared ("brg:avx512_core").
    public static var lastKernel: String { String(cString: ember_products_last_kernel()) }

    /// Products the calling thread has prepared (JIT-compiled) so far; each shape once.
    public static var preparedOnThisThread: Int { ember_products_created() }

    /// Why float32 products run below this CPU's best, in one line; nil when they do not.
    public static var shortfall: String? {
        let cpu = cpuInstructions
        switch float32 {
        case .onednn:
            let used = oneDNNInstructions
            guard float32Level(used) < float32Level(cpu) else { return nil }
            return "float32 products run on oneDNN's \(used) kernels, below this CPU's \(cpu) (DNNL_MAX_CPU_ISA set?)"
        case .openblas:
            return "float32 products run on OpenBLAS \(blasKernel) kernels instead of oneDNN's \(oneDNNInstructions)"
        }
    }

    /// How wide an instruction set's float32 arithmetic is, in oneDNN's names: VNNI, bfloat16
    /// and AMX add nothing to float32 products, so a cap at `avx512_core` costs them nothing.
    static func float32Level(_ isa: String) -> Int {
        let levels: [String: Int] = ["sse41": 1, "avx": 2, "avx2": 3, "avx2_vnni": 3]
        return isa.hasPrefix("avx512") ? 4 : levels[isa] ?? 0
    }
}

extension ProductEngine {
    /// GFLOP/s of `C [m, n] = A [m, k] · B [k, n]` in float32 on `library`, the median of a few
    /// rounds of about `seconds` / 5 each (for `trainer bench --products`).
    public static func measure(m: Int, n: Int, k: Int, on library: Library, seconds: Double = 0.5) -> Double {
        let saved = float32
        float32 = library
        defer { float32 = saved }
        let (a, b, c) = operands(m: m, n: n, k: k)
        return withExtendedLifetime((a, b, c)) {
            rate(flops: 2 * m * n * k, seconds: seconds) {
                Kernels.gemm(false, false, m: m, n: n, k: k, UnsafePointer(a.pointer(Float.self)), lda: k,
                             UnsafePointer(b.pointer(Float.self)), ldb: n, beta: 0, c.pointer(Float.self), ldc: n)
            }
        }
    }

    /// GFLOP/s of the same product in bfloat16 (float32 accumulation, oneDNN): with `rounded`,
    /// of operands already in bfloat16 (the bfloat16 units' own speed: AMX where the CPU has it);
    /// otherwise of float32 operands rounded at each call. Nil without bfloat16 units.
    public static func measureBFloat16(m: Int, n: Int, k: Int, rounded: Bool, seconds: Double = 0.5) -> Double? {
        guard Precision.bfloat16IsNative else { return nil }
        let (a, b, c) = operands(m: m, n: n, k: k)
        return autocast(.bfloat16) {
            let ra = rounded ? Kernels.roundedForProducts(a) : nil, rb = rounded ? Kernels.roundedForProducts(b) : nil
            return withExtendedLifetime((a, b, c, ra, rb)) {
                rate(flops: 2 * m * n * k, seconds: seconds) {
                    Kernels.gemm(false, false, m: m, n: n, k: k, ProductOperand(a.pointer(Float.self), rounded: ra), lda: k,
                                 ProductOperand(b.pointer(Float.self), rounded: rb), ldb: n, beta: 0, c.pointer(Float.self), ldc: n)
                }
            }
        }
    }

    /// How many times float32's speed this CPU multiplies at in bfloat16 (operands already
    /// rounded), measured now on a mid-sized product for about `seconds`; nil without bfloat16
    /// units. Above 1 wherever bf16 pays: AMX (4–10×), AMD's Zen 4 and 5 (about 2×). Below 1 on
    /// Intel cores without AMX, whose AVX512_BF16 dot products issue at half the rate of their
    /// float32 FMAs: there `--precision bf16` is slower than float32.
    public static func bfloat16Speedup(seconds: Double = 0.12) -> Double? {
        guard Precision.bfloat16IsNative else { return nil }
        // Alternating, best of three each: the first products of a process (threads waking,
        // kernels compiled) and a noisy host only ever make a rate lower.
        let (m, n, k) = (1024, 512, 256)
        var bf16 = 0.0, f32 = 0.0
        for _ in 0..<3 {
            bf16 = max(bf16, measureBFloat16(m: m, n: n, k: k, rounded: true, seconds: seconds / 6) ?? 0)
            f32 = max(f32, measure(m: m, n: n, k: k, on: float32, seconds: seconds / 6))
        }
        return bf16 / f32
    }

    /// A product's operands drawn from a generator of their own: measuring leaves the draws of
    /// `Generator.default` (and so a training run's) untouched.
    private static func operands(m: Int, n: Int, k: Int) -> (Tensor, Tensor, Tensor) {
        let generator = Generator(seed: 0)
        return (Tensor.randn([m, k], generator: generator), Tensor.randn([k, n], generator: generator), Tensor.zeros([m, n]))
    }

    /// GFLOP/s of `body` (`flops` a call): the median of five rounds of about `seconds` / 5.
    private static func rate(flops: Int, seconds: Double, _ body: () -> Void) -> Double {
        func run(_ times: Int) -> Double {
            let start = monotonicNanoseconds()
            for _ in 0..<times { body() }
            return Double(monotonicNanoseconds() - start) / 1e9
        }
        let once = max(run(3) / 3, 1e-7)
        let times = max(1, Int(seconds / 5 / once))
        let rounds = (0..<5).map { _ in run(times) }.sorted()
        return Double(flops) * Double(times) / rounds[2] / 1e9
    }
}
