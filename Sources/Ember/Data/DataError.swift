import Foundation

/// A problem with input data: the message names the file (or dataset) and what is wrong.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    public static func file(_ path: String, _ problem: String) -> DataError { DataError("\(path): \(problem)") }
}

/// Sizes a reader takes from a file, checked before anything is allocated from them.
public enum DataLimits {
    /// The most bytes a gzip-compressed file may decompress to (a guard against gzip bombs):
    /// half this machine's memory, at most 16 GiB.
    public static let maxDecompressedBytes: Int = {
        let half = Int(min(ProcessInfo.processInfo.physicalMemory / 2, UInt64(Int.max)))
        return min(half, 16 << 30)
    }()

    /// The largest class index a label file may hold (a model with more classes is not what
    /// such a file means: probably regression targets).
    public static let maxClassIndex = 1_000_000

    /// The number of elements of `shape`, or an error naming `path` when a dimension is
    /// negative or the element count (times `elementSize` bytes) overflows.
    public static func elementCount(_ shape: [Int], elementSize: Int = 1, path: String) throws -> Int {
        var count = 1
        for d in shape {
            guard d >= 0 else { throw DataError.file(path, "shape \(shape) has a negative dimension") }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product.multipliedReportingOverflow(by: max(elementSize, 1)).overflow == false,
                  product * max(elementSize, 1) <= Int.max / 2 else {
                throw DataError.file(path, "shape \(shape) is too large to be real (its byte count overflows)")
            }
            count = product
        }
        return count
    }
}
