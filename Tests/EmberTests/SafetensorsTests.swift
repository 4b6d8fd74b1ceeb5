import XCTest
import Foundation
@testable import Ember

final class SafetensorsTests: XCTestCase {
    func testRoundTripKeepsKeysShapesDtypesAndMetadata() throws {
        let tensors = ["a.weight": Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), "b": Tensor([0.5], dtype: .float64),
                       "steps": Tensor(indices: [7, 8])]
        let data = try Safetensors.encode(tensors, metadata: ["epoch": "3"])
        let (back, meta) = try Safetensors.decode(data)
        XCTAssertEqual(meta, ["epoch": "3"])
        XCTAssertEqual(Set(back.keys), Set(tensors.keys))
        for (k, t) in tensors {
            XCTAssertEqual(back[k]!.shape, t.shape)
            XCTAssertEqual(back[k]!.dtype, t.dtype)
            XCTAssertEqual(back[k]!.doubleScalars, t.doubleScalars)
        }
        // The data section starts 8-byte aligned and the encoding is deterministic.
        let headerLength = data.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        XCTAssertEqual((8 + headerLength) % 8, 0)
        XCTAssertEqual(try Safetensors.encode(tensors, metadata: ["epoch": "3"]), data)
    }

    func testReadsAPyTorchWrittenFileIntoAModel() throws {
        let (tensors, meta) = try Safetensors.load(Fixture.url("cnn.safetensors").path)
        XCTAssertEqual(meta["framework"], "pytorch")
        let model = Sequential(Conv2d(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1), BatchNorm2d(numFeatures: 4),
                               ReLU(), MaxPool2d(kernelSize: 2), Flatten(), Linear(inFeatures: 64, outFeatures: 5))
        try model.loadStateDict(tensors.mapValues { $0.dtype == .int64 ? $0 : $0.to(.float32) })
        let c = NNFixtures.shared.cnn
        let out = noGrad { model.eval()(c.input.tensor()) }
        XCTAssertNil(firstMismatch(out.doubleScalars, c.output.values, rtol: 1e-4, atol: 1e-5))
    }

    func testTruncatedAndMalformedFilesAreReported() throws {
        let data = try Safetensors.encode(["w": Tensor([1, 2, 3])])
        XCTAssertThrowsError(try Safetensors.decode(data.prefix(data.count - 4), path: "w.safetensors")) {
            XCTAssertTrue("\($0)".contains("w.safetensors") && "\($0)".contains("truncated"), "\($0)")
        }
        XCTAssertThrowsError(try Safetensors.decode(Data([1, 2, 3]), path: "x")) { XCTAssertTrue("\($0)".contains("too short")) }
        XCTAssertThrowsError(try Safetensors.decode(Data([200, 0, 0, 0, 0, 0, 0, 0, 1]), path: "y"))
        XCTAssertThrowsError(try Safetensors.load("/nonexistent/file.safetensors")) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    func testAtomicWriteReplacesWholeFilesAndChecksumsDetectChanges() throws {
        let path = NSTemporaryDirectory() + "ember-atomic-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try AtomicFile.write(Data("first".utf8), to: path)
        try AtomicFile.write(Data("second".utf8), to: path)
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("second".utf8))
        XCTAssertEqual(Checksum.crc32(Data("123456789".utf8)), 0xCBF4_3926)
    }
}
