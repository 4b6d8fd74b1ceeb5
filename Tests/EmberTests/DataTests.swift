import XCTest
import Foundation
@testable import Ember

final class DataTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "ember-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func write(_ name: String, _ text: String) -> String {
        let path = dir + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    private func assertThrows(_ body: @autoclosure () throws -> Any, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for w in words { XCTAssertTrue("\(error)".contains(w), "'\(error)' should mention '\(w)'", file: file, line: line) }
        }
    }

    // MARK: Datasets and loaders

    func testTensorDatasetBatchesAndSubsets() throws {
        let ds = TensorDataset(inputs: Tensor.arange(0, 12).reshape([6, 2]), targets: Tensor(indices: [0, 1, 2, 0, 1, 2]))
        XCTAssertEqual(ds.count, 6)
        XCTAssertEqual(ds[2].input.scalars, [4, 5])
        XCTAssertEqual(ds.batch([5, 0]).input.scalars, [10, 11, 0, 1])
        XCTAssertEqual(ds.numClasses, 3)
        let parts = try randomSplit(ds, lengths: [4, 2], generator: Generator(seed: 1))
        XCTAssertEqual(Set(parts[0].indices + parts[1].indices), Set(0..<6))
        let again = try randomSplit(ds, lengths: [4, 2], generator: Generator(seed: 1))
        XCTAssertEqual(parts[0].indices, again[0].indices)
        XCTAssertEqual(try randomSplit(ds, fractions: [0.5, 0.3, 0.2], generator: Generator(seed: 0)).map(\.count), [4, 1, 1])
        assertThrows(try randomSplit(ds, lengths: [4, 4], generator: Generator(seed: 1)), mentions: ["[4, 4]", "6"])
    }

    func testLoaderOrderIsDeterministicPerSeedAndEpochAndCoversEverything() {
        let ds = TensorDataset(inputs: Tensor.arange(0, 10).reshape([10, 1]), targets: Tensor(indices: Array(0..<10)))
        func epochs(_ seed: UInt64) -> [[Int]] {
            let loader = DataLoader(ds, batchSize: 3, shuffle: true, seed: seed)
            return (0..<3).map { _ in loader.flatMap { $0.target.intScalars } }
        }
        let a = epochs(7), b = epochs(7)
        XCTAssertEqual(a, b, "same seed, same orders")
        XCTAssertNotEqual(a[0], a[1], "each epoch reshuffles")
        XCTAssertNotEqual(a[0], epochs(8)[0])
        for order in a { XCTAssertEqual(order.sorted(), Array(0..<10)) }
        let sequential = DataLoader(ds, batchSize: 4)
        XCTAssertEqual(sequential.map { $0.target.count }, [4, 4, 2])
        XCTAssertEqual(DataLoader(ds, batchSize: 4, dropLast: true).map { $0.target.count }, [4, 4])
        XCTAssertEqual(DataLoader(ds, batchSize: 4, dropLast: true).count, 2)
        // Without prefetching the batches are the same.
        let plain = DataLoader(ds, batchSize: 3, shuffle: true, seed: 7, prefetch: false)
        XCTAssertEqual(plain.flatMap { $0.target.intScalars }, a[0])
        // An abandoned iteration does not block the next one.
        for _ in DataLoader(ds, batchSize: 1, shuffle: true) { break }
    }

    func testDistributedSamplerPartitionsForEveryWorldSize() {
        for n in [1, 7, 10, 13, 64] {
            for world in 1...8 {
                for dropLast in [false, true] {
                    let shares = (0..<world).map {
                        DistributedSampler(count: n, rank: $0, worldSize: world, shuffle: true, seed: 3, dropLast: dropLast).indices()
                    }
                    let per = shares[0].count
                    XCTAssertTrue(shares.allSatisfy { $0.count == per }, "equal shares n=\(n) world=\(world)")
                    let all = shares.flatMap { $0 }
                    if dropLast {
                        XCTAssertEqual(Set(all).count, all.count, "disjoint n=\(n) world=\(world)")
                        XCTAssertEqual(per, n / world)
                    } else {
                        XCTAssertEqual(Set(all), Set(0..<n), "covering n=\(n) world=\(world)")
                        XCTAssertEqual(per, (n + world - 1) / world)
                        if n % world == 0 { XCTAssertEqual(Set(all).count, all.count) }
                    }
                    // Same seed and epoch: same shares; another epoch: another order.
                    XCTAssertEqual(shares[0], DistributedSampler(count: n, rank: 0, worldSize: world, shuffle: true, seed: 3, dropLast: dropLast).indices())
                }
            }
        }
        var s = DistributedSampler(count: 100, rank: 1, worldSize: 4, seed: 0)
        let first = s.indices()
        s.setEpoch(1)
        XCTAssertNotEqual(first, s.indices())
    }

    func testEvalSamplerCountsEverySampleOnce() {
        for n in [5, 10, 11] {
            for world in 1...6 {
                let all = (0..<world).flatMap { DistributedEvalSampler(count: n, rank: $0, worldSize: world).indices() }
                XCTAssertEqual(all.sorted(), Array(0..<n))
                XCTAssertEqual((0..<world).map { DistributedEvalSampler(count: n, rank: $0, worldSize: world).count }.reduce(0, +), n)
            }
        }
    }

    func testTransforms() {
        let x = Tensor([1, 2, 3, 4, 5, 6], shape: [1, 2, 3])
        XCTAssertEqual(RandomHorizontalFlip(p: 1)(x).scalars, [3, 2, 1, 6, 5, 4])
        XCTAssertEqual(RandomHorizontalFlip(p: 0)(x).scalars, x.scalars)
        let crop = RandomCrop(size: (2, 3), padding: 1, generator: Generator(seed: 0))(x)
        XCTAssertEqual(crop.shape, [1, 2, 3])
        let data = Tensor([1, 10, 3, 10, 5, 10], shape: [3, 2])
        let norm = Normalize.fit(data)
        let z = norm.batch(data)
        XCTAssertEqual(z.mean(dim: 0).scalars[0], 0, accuracy: 1e-6)
        XCTAssertEqual(z.scalars[1], 0, "a constant feature maps to 0, not NaN")
    }

    // MARK: File formats

    func testCSVWithHeaderLabelColumnAndGzip() throws {
        let path = write("a.csv", "label,x1,x2\n1,0.5,2\n0,1.5,-3\n")
        let ds = try CSV.load(path, labelColumn: 0)
        XCTAssertEqual(ds.inputs.scalars, [0.5, 2, 1.5, -3])
        XCTAssertEqual(ds.targets.intScalars, [1, 0])
        let regression = try CSV.load(write("r.csv", "1,2,0.25\n3,4,0.5\n"), target: .value)
        XCTAssertEqual(regression.targets.shape, [2, 1])
        XCTAssertEqual(regression.targets.scalars, [0.25, 0.5])
        // The bundled file is gzip: it must decompress and parse.
        let mnist = try MNIST.bundled()
        XCTAssertEqual(mnist.inputs.shape, [5000, 1, 28, 28])
        XCTAssertEqual(Set(mnist.targets.intScalars), Set(0..<10))
        XCTAssertLessThanOrEqual(mnist.inputs.max().item(), 1)
    }

    func testCSVBadInputNamesFileLineAndColumn() {
        assertThrows(try CSV.load(dir + "/missing.csv"), mentions: ["missing.csv", "no such file"])
        assertThrows(try CSV.load(write("b.csv", "1,2,3\n4,x,6\n")), mentions: ["b.csv", "line 2", "column 2", "'x'"])
        assertThrows(try CSV.load(write("c.csv", "1,2,3\n4,5\n")), mentions: ["c.csv", "line 2", "2 columns", "expected 3"])
        assertThrows(try CSV.load(write("d.csv", "")), mentions: ["d.csv", "no data rows"])
        assertThrows(try CSV.load(write("e.csv", "1,2,1.5\n")), mentions: ["e.csv", "not a class index"])
        assertThrows(try CSV.load(write("f.csv", "1,2\n"), labelColumn: 5), mentions: ["label column 5"])
        let gz = dir + "/g.csv.gz"
        _ = FileManager.default.createFile(atPath: gz, contents: Data([0x1f, 0x8b, 8, 0, 0, 0]))
        assertThrows(try CSV.load(gz), mentions: ["g.csv.gz", "gzip"])
    }

    func testIDXAndMNISTDirectory() throws {
        try IDX.writeBytes([0, 255, 128, 64, 1, 2, 3, 4], shape: [2, 2, 2], to: dir + "/train-images-idx3-ubyte")
        try IDX.writeBytes([3, 9], shape: [2], to: dir + "/train-labels-idx1-ubyte")
        let (train, test) = try MNISTFiles.load(directory: dir)
        XCTAssertNil(test)
        XCTAssertEqual(train.inputs.shape, [2, 1, 2, 2])
        XCTAssertEqual(train.inputs.scalars[1], 1)
        XCTAssertEqual(train.targets.intScalars, [3, 9])
        try IDX.writeBytes([3, 12], shape: [2], to: dir + "/train-labels-idx1-ubyte")
        assertThrows(try MNISTFiles.load(directory: dir), mentions: ["train-labels-idx1-ubyte", "12", "out of range"])
        try IDX.writeBytes([3], shape: [1], to: dir + "/train-labels-idx1-ubyte")
        assertThrows(try MNISTFiles.load(directory: dir), mentions: ["1 labels for 2 images"])
        _ = FileManager.default.createFile(atPath: dir + "/t.idx", contents: Data([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
        assertThrows(try IDX.read(dir + "/t.idx"), mentions: ["t.idx", "truncated"])
        assertThrows(try MNISTFiles.load(directory: dir + "/none"), mentions: ["train-images-idx3-ubyte"])
    }

    func testNPYRoundTripsEveryDtype() throws {
        for t in [Tensor([1.5, -2, 3, 4, 5, 6], shape: [2, 3]), Tensor([1, 2], dtype: .float64), Tensor(indices: [7, -1, 3], shape: [3, 1])] {
            let path = dir + "/a.npy"
            try NPY.write(t, to: path)
            let back = try NPY.read(path)
            XCTAssertEqual(back.shape, t.shape)
            XCTAssertEqual(back.dtype, t.dtype)
            XCTAssertEqual(back.doubleScalars, t.doubleScalars)
        }
        assertThrows(try NPY.read(write("bad.npy", "hello")), mentions: ["bad.npy", "not a .npy"])
    }
}
