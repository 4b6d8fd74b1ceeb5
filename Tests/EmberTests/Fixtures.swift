import Foundation
import Ember

/// One case of a PyTorch reference fixture.
struct OpCase: Decodable {
    struct Input: Decodable {
        let shape: [Int]
        let dtype: String
        let values: [Double]
    }
    struct Output: Decodable {
        let shape: [Int]
        let values: [Double]
    }
    let name: String
    let op: String
    let inputs: [Input]
    let output: Output
    let weight: [Double]?
    let grads: [[Double]?]?

    /// Fresh input tensors in `dtype`; floating-point ones require grad unless PyTorch gave them
    /// no gradient (inputs that are data, such as targets).
    func makeInputs(_ dtype: DType) -> [Tensor] {
        inputs.enumerated().map { i, input in
            input.dtype == "int64"
                ? Tensor(indices: input.values.map { Int($0) }, shape: input.shape)
                : Tensor(input.values, shape: input.shape, dtype: dtype,
                         requiresGrad: grads.map { $0[i] != nil } ?? true)
        }
    }
}

struct OpFixtures: Decodable {
    let torch: String
    let cases: [OpCase]
}

enum Fixture {
    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)
            ?? Bundle.module.bundleURL.appendingPathComponent("Fixtures/\(name)")
    }

    static func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
    }
}

/// Largest violation of `|a - b| <= atol + rtol * |b|`, with its index (nil if within tolerance).
func firstMismatch(_ a: [Double], _ b: [Double], rtol: Double, atol: Double) -> (index: Int, got: Double, want: Double)? {
    guard a.count == b.count else { return (-1, Double(a.count), Double(b.count)) }
    for i in a.indices {
        let ok = a[i] == b[i] || Swift.abs(a[i] - b[i]) <= atol + rtol * Swift.abs(b[i])
        if !ok { return (i, a[i], b[i]) }
    }
    return nil
}
