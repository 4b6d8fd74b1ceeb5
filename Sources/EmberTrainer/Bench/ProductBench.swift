import Ember

extension Bench {
    /// The presets' matrix products, by name: `(m, n, k)` of `[m, k] · [k, n]`.
    public static let productShapes: [(name: String, m: Int, n: Int, k: Int)] = [
        ("square-2048", 2048, 2048, 2048),
        ("gpt-qkv", 2048, 384, 128),       // 32 sequences × 64 tokens, width 128 → Q, K, V
        ("gpt-mlp-down", 2048, 128, 512),
        ("gpt-attention", 64, 64, 32),     // one head: 64 tokens, head width 32
        ("lstm-step", 32, 1024, 256),      // batch 32, hidden 256 → four gates
        ("mlp-first", 64, 256, 784),
        ("cnn-conv2", 16, 1600, 150),      // LeNet's second convolution by im2col, 16 images
    ]

    /// One line per shape: GFLOP/s of the float32 product on oneDNN (where it runs) and on
    /// OpenBLAS, and with bfloat16 units of the bf16 product (`bf16_gflops`: operands already
    /// rounded, the units' own speed; `bf16_rounding_gflops`: float32 operands rounded at the call).
    public static func products(threads: Int) -> [String] {
        setNumThreads(threads)
        let libraries: [ProductEngine.Library] = ProductEngine.float32 == .onednn ? [.onednn, .openblas] : [.openblas]
        func format(_ rate: Double) -> String { String(format: "%.1f", rate) }
        return productShapes.map { shape in
            var rates = libraries.map { "\($0.rawValue)_gflops=" + format(ProductEngine.measure(m: shape.m, n: shape.n, k: shape.k, on: $0)) }
            for (rounded, name) in [(true, "bf16_gflops"), (false, "bf16_rounding_gflops")] {
                if let rate = ProductEngine.measureBFloat16(m: shape.m, n: shape.n, k: shape.k, rounded: rounded) { rates.append("\(name)=" + format(rate)) }
            }
            return "product \(shape.name) m=\(shape.m) n=\(shape.n) k=\(shape.k) threads=\(threads) " + rates.joined(separator: " ")
                + " products=\(ProductEngine.description) bf16_units=\(Precision.bfloat16Units ?? "none") openblas=\(blasKernel) cpu=\(ProductEngine.cpuInstructions)"
        }
    }
}
