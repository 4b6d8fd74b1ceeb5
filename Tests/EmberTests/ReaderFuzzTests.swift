import XCTest
import Foundation
@testable import Ember

/// Thousands of damaged files of every format Ember reads: each must decode or fail with a
/// `DataError`, never trap, overflow or allocate without bound. Mutations: flipped and random
/// bytes, truncations, insertions, and sizes in headers replaced by extreme values.
final class ReaderFuzzTests: XCTestCase {
    /// Cases per format (and a time budget, so a slow machine still finishes promptly).
    static let casesPerFormat = 2000, secondsPerFormat = 8.0

    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    }

    static let extremes: [String] = ["-1", "-2", "0", "1e30", "4294967296", "9223372036854775807", "18446744073709551615",
                                     "-9223372036854775808", "65536", "2147483647", "99999999999"]
    static let extremeWords: [[UInt8]] = [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0x80, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]]

    /// A mutated copy of `base`: `text` mutations rewrite numbers in the readable part.
    static func mutate(_ base: [UInt8], _ rng: inout Rng) -> [UInt8] {
        var b = base
        switch rng.below(7) {
        case 0:  // flip a few bytes
            for _ in 0...rng.below(8) where !b.isEmpty { b[rng.below(b.count)] ^= UInt8(1 << rng.below(8)) }
        case 1:  // random bytes
            for _ in 0...rng.below(8) where !b.isEmpty { b[rng.below(b.count)] = UInt8(rng.below(256)) }
        case 2:  // truncate
            b = Array(b.prefix(rng.below(b.count + 1)))
        case 3:  // insert junk
            let at = rng.below(b.count + 1)
            b.insert(contentsOf: (0..<rng.below(16)).map { _ in UInt8(rng.below(256)) }, at: at)
        case 4:  // an extreme 4-byte word somewhere in the first 64 bytes
            let at = rng.below(min(b.count, 64))
            for (k, v) in extremeWords[rng.below(extremeWords.count)].enumerated() where at + k < b.count { b[at + k] = v }
        case 5:  // an extreme 8-byte little-endian length at the start
            let v: UInt64 = [UInt64.max, UInt64(Int.max), 1 << 40, 0, UInt64(b.count)][rng.below(5)]
            for k in 0..<min(8, b.count) { b[k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        default:  // replace a number in the text with an extreme one
            let text = String(decoding: b, as: UTF8.self)
            let digits = text.indices.filter { text[$0].isNumber }
            guard let pick = digits.isEmpty ? nil : digits[rng.below(digits.count)] else { return b }
            var end = pick
            while end < text.endIndex && text[end].isNumber { end = text.index(after: end) }
            var start = pick
            while start > text.startIndex && text[text.index(before: start)].isNumber { start = text.index(before: start) }
            b = Array((String(text[..<start]) + extremes[rng.below(extremes.count)] + String(text[end...])).utf8)
        }
        return b
    }

    /// Runs `decode` on mutations of `base`; any error must be a `DataError`.
    func fuzz(_ name: String, _ base: Data, seed: UInt64, _ decode: (Data) throws -> Void) {
        var rng = Rng(state: seed)
        let start = Date()
        var decoded = 0, refused = 0
        for _ in 0..<Self.casesPerFormat {
            if Date().timeIntervalSince(start) > Self.secondsPerFormat { break }
            let bytes = Self.mutate([UInt8](base), &rng)
            do {
                try decode(Data(bytes))
                decoded += 1
            } catch is DataError {
                refused += 1
            } catch {
                XCTFail("\(name): a mutation failed with \(type(of: error)) instead of DataError: \(error)")
            }
        }
        XCTAssertGreaterThan(refused, 0, "\(name): no mutation was refused; the fuzzer is not reaching the checks")
        XCTAssertGreaterThan(decoded + refused, 100, "\(name): too few cases ran")
    }

    func testSafetensors() throws {
        let g = Generator(seed: 1)
        let base = try Safetensors.encode(["a.weight": Tensor.randn([3, 4], generator: g), "b": Tensor.randn([5], dtype: .float64, generator: g),
                                           "n": Tensor(indices: [1, 2, 3])], metadata: ["format": "pt"])
        fuzz("safetensors", base, seed: 11) { _ = try Safetensors.decode($0, path: "fuzz.safetensors") }
    }

    func testNPY() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-fuzz-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, t) in [Tensor.randn([4, 3]), Tensor(indices: [1, 2, 3, 4, 5])].enumerated() {
            let path = dir + "/x\(i).npy"
            try NPY.write(t, to: path)
            var base = try Data(contentsOf: URL(fileURLWithPath: path))
            fuzz("npy v1 #\(i)", base, seed: 21 + UInt64(i)) { _ = try NPY.decode($0, path: "fuzz.npy") }
            // Version 2: a 4-byte header length.
            base[6] = 2
            base.insert(contentsOf: [0, 0], at: 10)
            fuzz("npy v2 #\(i)", base, seed: 31 + UInt64(i)) { _ = try NPY.decode($0, path: "fuzz.npy") }
        }
    }

    func testIDX() throws {
        var base = Data([0, 0, 0x08, 3])
        for d in [2, 3, 4] { base.append(contentsOf: withUnsafeBytes(of: UInt32(d).bigEndian, Array.init)) }
        base.append(contentsOf: (0..<24).map { UInt8($0) })
        fuzz("idx", base, seed: 41) { _ = try IDX.decode($0, path: "fuzz.idx") }
    }

    func testCSV() throws {
        let base = Data("a,b,label\n0.5,1.5,0\n2,3e2,1\n-1,4,2\n7,8,1\n".utf8)
        fuzz("csv classes", base, seed: 51) { _ = try CSV.decode($0, path: "fuzz.csv") }
        fuzz("csv values", base, seed: 52) { _ = try CSV.decode($0, path: "fuzz.csv", target: .value) }
    }

    func testGzip() throws {
        let csv = (0..<200).map { "\($0),\($0 * 2),\($0 % 3)" }.joined(separator: "\n")
        let base = try gzip(Data(csv.utf8))
        XCTAssertEqual(try FileBytes.gunzip(base), Data(csv.utf8))
        fuzz("gzip", base, seed: 61) { _ = try CSV.decode(try FileBytes.gunzip($0, path: "fuzz.csv.gz"), path: "fuzz.csv.gz") }
    }

    /// A gzip bomb (64 MB of zeros in about 64 KB) stops at the cap, with a message.
    func testGzipBombIsRefused() throws {
        let bomb = try gzip(Data(count: 64 << 20))
        XCTAssertLessThan(bomb.count, 1 << 20)
        XCTAssertThrowsError(try FileBytes.gunzip(bomb, path: "bomb.gz", limit: 8 << 20)) { error in
            XCTAssertTrue("\(error)".contains("bomb.gz") && "\(error)".contains("more than"), "\(error)")
        }
        XCTAssertEqual(try FileBytes.gunzip(bomb, path: "bomb.gz").count, 64 << 20, "under the default cap it decompresses")
    }

    /// gzip through the system's `gzip` tool, as users make such files.
    func gzip(_ data: Data) throws -> Data {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-gz-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("f")
        try data.write(to: file)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-f", file.path]
        try p.run()
        p.waitUntilExit()
        return try Data(contentsOf: URL(fileURLWithPath: file.path + ".gz"))
    }
}
