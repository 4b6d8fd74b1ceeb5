import Foundation

/// The IDX format of the MNIST files (`train-images-idx3-ubyte`, raw or `.gz`).
public enum IDX {
    /// Reads an IDX file into a tensor of its shape (float32 for data, int64 for 1-D label files).
    public static func read(_ path: String) throws -> Tensor {
        try decode(try FileBytes.read(path), path: path)
    }

    /// Decodes IDX bytes; the dimensions are checked against the data before anything is allocated.
    public static func decode(_ data: Data, path: String = "<data>") throws -> Tensor {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Tensor in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
                throw DataError.file(path, "is not an IDX file (bad magic number)")
            }
            let type = bytes[2], rank = Int(bytes[3])
            guard rank >= 1, bytes.count >= 4 + 4 * rank else { throw DataError.file(path, "IDX header is truncated") }
            let shape = (0..<rank).map { d in
                (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) }
            }
            let elementSize: Int
            switch type {
            case 0x08, 0x09: elementSize = 1
            case 0x0B: elementSize = 2
            case 0x0C, 0x0D: elementSize = 4
            case 0x0E: elementSize = 8
            default: throw DataError.file(path, "unknown IDX element type 0x\(String(type, radix: 16))")
            }
            let count = try DataLimits.elementCount(shape, elementSize: elementSize, path: path), offset = 4 + 4 * rank
            guard bytes.count - offset >= count * elementSize else {
                throw DataError.file(path, "holds \(bytes.count - offset) data bytes but its header promises \(count * elementSize) (shape \(shape)): truncated?")
            }
            var values = [Double](repeating: 0, count: count)
            for i in 0..<count {
                let p = offset + i * elementSize
                switch type {
                case 0x08: values[i] = Double(bytes[p])
                case 0x09: values[i] = Double(Int8(bitPattern: bytes[p]))
                case 0x0B: values[i] = Double(Int16(bitPattern: UInt16(bytes[p]) << 8 | UInt16(bytes[p + 1])))
                case 0x0C: values[i] = Double(Int32(bitPattern: bigEndian32(bytes, p)))
                case 0x0D: values[i] = Double(Float(bitPattern: bigEndian32(bytes, p)))
                default: values[i] = Double(bitPattern: UInt64(bigEndian32(bytes, p)) << 32 | UInt64(bigEndian32(bytes, p + 4)))
                }
            }
            let integral = type == 0x08 || type == 0x09 || type == 0x0B || type == 0x0C
            return Tensor(values, shape: shape, dtype: integral && rank == 1 ? .int64 : .float32)
        }
    }

    private static func bigEndian32(_ b: UnsafeBufferPointer<UInt8>, _ p: Int) -> UInt32 {
        UInt32(b[p]) << 24 | UInt32(b[p + 1]) << 16 | UInt32(b[p + 2]) << 8 | UInt32(b[p + 3])
    }

    /// Writes unsigned bytes in IDX format (for tests and tools).
    public static func writeBytes(_ values: [UInt8], shape: [Int], to path: String) throws {
        var data = Data([0, 0, 0x08, UInt8(shape.count)])
        for d in shape { data.append(contentsOf: withUnsafeBytes(of: UInt32(d).bigEndian, Array.init)) }
        data.append(contentsOf: values)
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// MNIST in its original IDX files in one directory.
public enum MNISTFiles {
    /// Loads `train-images-idx3-ubyte` / `train-labels-idx1-ubyte` (and the `t10k-` test pair when
    /// present; raw or `.gz`), with pixels scaled to [0, 1] and shape `[N, 1, 28, 28]`.
    public static func load(directory: String) throws -> (train: TensorDataset, test: TensorDataset?) {
        func find(_ stem: String) -> String? {
            [stem, stem + ".gz"].map { (directory as NSString).appendingPathComponent($0) }
                .first { FileManager.default.fileExists(atPath: $0) }
        }
        func pair(_ images: String, _ labels: String, required: Bool) throws -> TensorDataset? {
            guard let imagePath = find(images), let labelPath = find(labels) else {
                if required { throw DataError.file(directory, "has no \(images)[.gz] and \(labels)[.gz] files") }
                return nil
            }
            let x = try IDX.read(imagePath), y = try IDX.read(labelPath)
            guard x.rank == 3, y.rank == 1, y.dtype == .int64 else {
                throw DataError.file(imagePath, "expected images [N, H, W] and labels [N], got \(x.shape) and \(y.shape)")
            }
            guard x.shape[0] == y.shape[0] else {
                throw DataError.file(labelPath, "has \(y.shape[0]) labels for \(x.shape[0]) images in \(imagePath)")
            }
            if let bad = y.intScalars.first(where: { $0 < 0 || $0 > 9 }) {
                throw DataError.file(labelPath, "label \(bad) is out of range 0...9")
            }
            return TensorDataset(inputs: (x / 255).unsqueeze(1), targets: y)
        }
        let train = try pair("train-images-idx3-ubyte", "train-labels-idx1-ubyte", required: true)!
        let test = try pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", required: false)
        return (train, test)
    }
}
