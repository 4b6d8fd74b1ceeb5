import Foundation

/// The 5,000-digit MNIST subset bundled with Ember (`examples/data/mnist_5k.csv.gz`, 500 per
/// class; from the MNIST database of LeCun, Cortes and Burges, CC BY-SA 3.0).
public enum MNIST {
    public static let bundledFileName = "mnist_5k.csv.gz"

    /// Where the bundled file is: `dataDirectory` (the trainer passes `$EMBER_DATA_DIR`), then
    /// `examples/data` above the running executable (a build inside the repository), then under
    /// the current directory, then beside this source file.
    public static func bundledPath(dataDirectory: String? = nil) throws -> String {
        try BundledData.path(bundledFileName, what: "the bundled MNIST subset", dataDirectory: dataDirectory)
    }

    /// The bundled subset: images `[5000, 1, 28, 28]` in [0, 1] (float32) and int64 labels.
    public static func bundled(dataDirectory: String? = nil) throws -> TensorDataset {
        let csv = try CSV.load(try bundledPath(dataDirectory: dataDirectory), labelColumn: -1, header: false)
        return TensorDataset(inputs: (csv.inputs / 255).reshape([-1, 1, 28, 28]), targets: csv.targets)
    }
}

/// Files bundled in `examples/data`, found beside the program (up to six folders up), in the
/// working directory or the source tree, or in `dataDirectory` first.
public enum BundledData {
    public static func path(_ fileName: String, what: String, dataDirectory: String? = nil) throws -> String {
        var candidates: [String] = []
        if let dir = dataDirectory {
            candidates.append((dir as NSString).appendingPathComponent(fileName))
        }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("examples/data/\(fileName)").path)
            dir.deleteLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/examples/data/\(fileName)")
        let source = URL(fileURLWithPath: #filePath)
        candidates.append(source.deletingLastPathComponent().appendingPathComponent("../../../../examples/data/\(fileName)").standardized.path)
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw DataError("\(what) (\(fileName)) was not found; pass the folder holding it (the trainer reads EMBER_DATA_DIR) (looked in: \(candidates.joined(separator: ", ")))")
        }
        return found
    }
}

/// The bundled corpus: seven plays of Shakespeare (public domain; the Open Knowledge
/// Foundation's edition, shakespeare 0.6, CC BY 2.5), 973,926 characters of 76 kinds.
public enum Shakespeare {
    public static let bundledFileName = "shakespeare.txt.gz"

    public static func bundledPath(dataDirectory: String? = nil) throws -> String {
        try BundledData.path(bundledFileName, what: "the bundled Shakespeare corpus", dataDirectory: dataDirectory)
    }
}
