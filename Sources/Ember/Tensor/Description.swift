import Foundation

extension Tensor: CustomStringConvertible, CustomDebugStringConvertible {
    /// Prints like PyTorch: `tensor([[1., 2.], [3., 4.]], requires_grad=True)`.
    public var description: String {
        let values = doubleScalars
        let format = ElementFormat(values, isInteger: dtype == .int64)
        let summarize = count > 1000
        var body = ""
        func render(_ dim: Int, _ offset: Int, _ indent: Int) {
            if dim == rank {
                body += format.string(values[offset])
                return
            }
            let n = shape[dim], stride = shape[(dim + 1)...].reduce(1, *)
            body += "["
            let shown: [Int?] = summarize && n > 6 ? [0, 1, 2, nil, n - 3, n - 2, n - 1] : (0..<n).map { $0 }
            for (j, i) in shown.enumerated() {
                if j > 0 {
                    body += dim == rank - 1 ? ", " : "," + String(repeating: "\n", count: rank - dim - 1)
                        + String(repeating: " ", count: indent + 1)
                }
                if let i { render(dim + 1, offset + i * stride, indent + 1) } else { body += "..." }
            }
            body += "]"
        }
        render(0, 0, 7)
        var extras: [String] = []
        if dtype == .float64 || dtype == .bfloat16 || dtype == .int64 && count == 0 { extras.append("dtype=\(dtype)") }
        if let name = gradFn?.name { extras.append("grad_fn=<\(name)0>") } else if requiresGrad { extras.append("requires_grad=True") }
        return "tensor(" + body + extras.map { ", " + $0 }.joined() + ")"
    }

    public var debugDescription: String { description + " shape=\(shape)" }
}

/// How PyTorch prints numbers: `1.` when every value is whole, four decimals otherwise, and
/// scientific notation when magnitudes are very large or very small; one width for all.
private struct ElementFormat {
    enum Style { case integer, whole, fixed, scientific }
    let style: Style
    let width: Int

    init(_ values: [Double], isInteger: Bool) {
        let finite = values.filter { $0.isFinite }
        let magnitudes = finite.map { Swift.abs($0) }.filter { $0 > 0 }
        if isInteger {
            style = .integer
        } else if finite.allSatisfy({ $0.rounded() == $0 }) && (magnitudes.max() ?? 0) < 1e8 {
            style = .whole
        } else if let hi = magnitudes.max(), let lo = magnitudes.min(), hi >= 1e8 || lo < 1e-4 || hi / lo > 1e5 {
            style = .scientific
        } else {
            style = .fixed
        }
        let plain = ElementFormat(style: style, width: 0)
        width = values.map { plain.string($0).count }.max() ?? 0
    }

    private init(style: Style, width: Int) {
        self.style = style
        self.width = width
    }

    func string(_ v: Double) -> String {
        let s: String
        if v.isNaN { s = "nan" } else if v.isInfinite { s = v < 0 ? "-inf" : "inf" } else {
            switch style {
            case .integer: s = String(Int64(v))
            case .whole: s = String(format: "%.0f.", v)
            case .fixed: s = String(format: "%.4f", v)
            case .scientific: s = String(format: "%.4e", v)
            }
        }
        return String(repeating: " ", count: Swift.max(0, width - s.count)) + s
    }
}
