/// A problem with input data: the message names the file (or dataset) and what is wrong.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    public static func file(_ path: String, _ problem: String) -> DataError { DataError("\(path): \(problem)") }
}
