import Foundation
import XCTest
@testable import Ember

/// The bfloat16 dtype: values for storage and exchange, converted as PyTorch converts them.
final class BFloat16DTypeTests: XCTestCase {
    struct Conversions: Decodable {
        let float32_bits: [UInt32]
        let float32_to_bfloat16: [UInt16]
        let float64: [Double]
        let float64_to_bfloat16: [UInt16]
    }

    func bits(_ t: Tensor) -> [UInt16] {
        Array(UnsafeBufferPointer(start: t.mutablePointer(UInt16.self), count: t.count))
    }

    func testConversionsRoundToNearestEvenAsPyTorchDoes() throws {
        let c = try Fixture.load("bfloat16.json", as: Conversions.self)
        let f32 = Tensor(c.float32_bits.map { Float(bitPattern: $0) })
        XCTAssertEqual(bits(f32.to(.bfloat16)), c.float32_to_bfloat16)
        // float64 goes through float32 first (so 1 + 2⁻⁸ + 2⁻³⁰ rounds to 1, not up), as in PyTorch.
        XCTAssertEqual(bits(Tensor(c.float64, dtype: .float64).to(.bfloat16)), c.float64_to_bfloat16)
        XCTAssertEqual(bits(Tensor(c.float64, dtype: .bfloat16)), c.float64_to_bfloat16, "creation rounds the same way")
        XCTAssertTrue(Tensor([Float.nan]).to(.bfloat16).scalars[0].isNaN)
    }

    func testBackToFloatIsExactAndEveryDtypeConverts() {
        let x = Tensor([1.5, -2.25, 3.0, 1e-40], dtype: .float64).to(.bfloat16)
        XCTAssertEqual(x.dtype, .bfloat16)
        XCTAssertEqual(x.to(.float32).scalars, [1.5, -2.25, 3.0, BFloat16.rounded(Float(1e-40 as Double))])
        XCTAssertEqual(x.to(.float64).doubleScalars, [1.5, -2.25, 3.0, Double(BFloat16.rounded(Float(1e-40 as Double)))])
        XCTAssertEqual(x.to(.int64).intScalars, [1, -2, 3, 0])
        XCTAssertEqual(Tensor(indices: [7, -300]).to(.bfloat16).scalars, [7, -300])
        XCTAssertEqual(x.description.contains("bfloat16"), true, x.description)
    }

    func testCreationAndFill() {
        XCTAssertEqual(Tensor.zeros([2, 2], dtype: .bfloat16).scalars, [0, 0, 0, 0])
        XCTAssertEqual(Tensor.ones([3], dtype: .bfloat16).scalars, [1, 1, 1])
        XCTAssertEqual(Tensor.full([2], 0.1, dtype: .bfloat16).scalars, [BFloat16.rounded(0.1), BFloat16.rounded(0.1)])
        XCTAssertEqual(Tensor.zeros([5], dtype: .bfloat16).count * DType.bfloat16.byteSize, 10)
    }

    func testShapeOpsMoveTheBitsUnchanged() {
        let values = (0..<12).map { Float($0) * 1.25 - 4 }
        let x = Tensor(values, shape: [3, 4]).to(.bfloat16)
        XCTAssertEqual(x.t().to(.float32).scalars, Tensor(values, shape: [3, 4]).t().scalars)
        XCTAssertEqual(x.narrow(dim: 1, start: 1, length: 2).to(.float32).scalars, [-2.75, -1.5, 2.25, 3.5, 7.25, 8.5])
        XCTAssertEqual(Tensor.cat([x, x], dim: 0).shape, [6, 4])
        XCTAssertEqual(bits(Tensor.cat([x, x], dim: 0).narrow(dim: 0, start: 3, length: 3)), bits(x))
        XCTAssertEqual(bits(x.reshape([12])), bits(x))
        XCTAssertEqual(bits(x.clone()), bits(x))
    }

    func testGradientsFlowThroughTheConversion() {
        let w = Tensor([0.3, -1.7, 2.5], requiresGrad: true)
        let y = w.to(.bfloat16).to(.float32) * Tensor([1, 2, 3])
        y.sum().backward()
        XCTAssertEqual(w.grad?.dtype, .float32)
        XCTAssertEqual(w.grad?.scalars, [1, 2, 3])
        XCTAssertEqual(y.scalars, [BFloat16.rounded(0.3), 2 * BFloat16.rounded(-1.7), 3 * BFloat16.rounded(2.5)])
    }

    func testSafetensorsKeepBFloat16AsBF16() throws {
        let w = Tensor([0.1, -3.5, 1e20, 7], shape: [2, 2]).to(.bfloat16)
        let data = try Safetensors.encode(["w": w])
        let header = String(decoding: data.dropFirst(8).prefix(200), as: UTF8.self)
        XCTAssertTrue(header.contains("\"BF16\""), header)
        let back = try Safetensors.decode(data).tensors["w"]!
        XCTAssertEqual(back.dtype, .bfloat16)
        XCTAssertEqual(back.shape, [2, 2])
        XCTAssertEqual(bits(back), bits(w))
    }

    func testAModelLoadsABFloat16StateDictIntoItsFloat32Weights() throws {
        let m = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 3))
        let saved = m.stateDict().mapValues { $0.to(.bfloat16) }
        let n = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 4))
        try n.loadStateDict(saved)
        XCTAssertEqual(n.weight.dtype, .float32)
        XCTAssertEqual(n.weight.scalars, m.weight.scalars.map(BFloat16.rounded))
    }
}

extension BFloat16DTypeTests {
    func testWithFloat32ItComputesInFloat32AsPyTorchPromotes() {
        let x = Tensor([1.5, 2.25], dtype: .bfloat16)
        let y = x * Tensor([2, 4])
        XCTAssertEqual(y.dtype, .float32)
        XCTAssertEqual(y.scalars, [3, 9])
        XCTAssertEqual(Tensor.promoted(.bfloat16, .int64), .bfloat16)
        XCTAssertEqual(Tensor.promoted(.bfloat16, .float64), .float64)
    }
}
