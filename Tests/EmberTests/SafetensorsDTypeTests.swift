import XCTest
@testable import Ember

/// Element types other than Ember's own, as PyTorch writes them (Fixtures/dtypes.safetensors from
/// scripts/generate_dtype_fixture.py), and bfloat16's rounding.
final class SafetensorsDTypeTests: XCTestCase {
    func testEveryStoredTypePyTorchWritesReadsAsItsValues() throws {
        let (t, _) = try Safetensors.load(Fixture.url("dtypes.safetensors").path)
        XCTAssertEqual(t["mask"]?.dtype, .int64)
        XCTAssertEqual(t["mask"]?.intScalars, [1, 0, 1, 0, 0, 1])
        XCTAssertEqual(t["mask"]?.shape, [2, 3])
        XCTAssertEqual(t["u8"]?.intScalars, [0, 7, 255])
        XCTAssertEqual(t["i8"]?.intScalars, [-128, 0, 127])
        XCTAssertEqual(t["i16"]?.intScalars, [-32768, 5, 32767])
        XCTAssertEqual(t["i32"]?.intScalars, [-2_147_483_648, 9, 2_147_483_647])
        XCTAssertEqual(t["i64"]?.intScalars, [-(1 << 62), 0, 1 << 62])
        let base: [Float] = [-2.5, 0, 1, 3.25, -0.0078125, 65504]
        for key in ["f16", "f32"] { XCTAssertEqual(t[key]?.scalars, base, key) }
        XCTAssertEqual(t["f64"]?.dtype, .float64)
        XCTAssertEqual(t["bf16"]?.dtype, .bfloat16, "BF16 reads as bfloat16, as PyTorch reads it")
        XCTAssertEqual(t["bf16"]?.scalars, [1.0, 1.0, 1.015625, -3.2964854295465914e+38, Float(9.183549615799121e-41 as Double), 3.140625])
    }

    func testMasksAndNarrowTypesRoundTripAndRefuseValuesTheyCannotHold() throws {
        let mask = Tensor(indices: [1, 0, 0, 1], shape: [2, 2]), bytes = Tensor(indices: [0, 200, 255])
        let w = Tensor([1.0, 1.00390625, 1.01171875, 3.14159])
        let data = try Safetensors.encode(["mask": mask, "bytes": bytes, "w": w], storing: ["mask": .BOOL, "bytes": .U8, "w": .BF16])
        let header = String(decoding: data.dropFirst(8).prefix(300), as: UTF8.self)
        for name in ["\"BOOL\"", "\"U8\"", "\"BF16\""] { XCTAssertTrue(header.contains(name), header) }
        let back = try Safetensors.decode(data).tensors
        XCTAssertEqual(back["mask"]?.intScalars, [1, 0, 0, 1])
        XCTAssertEqual(back["bytes"]?.intScalars, [0, 200, 255])
        XCTAssertEqual(back["w"]?.scalars, [1.0, 1.0, 1.015625, 3.140625])
        XCTAssertThrowsError(try Safetensors.encode(["m": Tensor(indices: [2])], storing: ["m": .BOOL])) {
            XCTAssertTrue("\($0)".contains("BOOL stores 0 and 1"), "\($0)")
        }
        XCTAssertThrowsError(try Safetensors.encode(["b": Tensor(indices: [256])], storing: ["b": .U8])) {
            XCTAssertTrue("\($0)".contains("U8 cannot store"), "\($0)")
        }
    }

    /// Round to nearest, ties to even (PyTorch's conversion), NaN kept, infinities exact.
    func testBFloat16RoundsToNearestEven() {
        XCTAssertEqual(BFloat16.rounded(1.00390625), 1.0)        // halfway, even below
        XCTAssertEqual(BFloat16.rounded(1.01171875), 1.015625)   // halfway, even above
        XCTAssertEqual(BFloat16.rounded(1.005), 1.0078125)       // past halfway
        XCTAssertEqual(BFloat16.rounded(.infinity), .infinity)
        XCTAssertTrue(BFloat16.rounded(.nan).isNaN)
        XCTAssertEqual(BFloat16.bits(-2), 0xC000)
    }
}
