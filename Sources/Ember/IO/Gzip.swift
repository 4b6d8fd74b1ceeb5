import CZlib
import Foundation

/// Reading files that may be gzip-compressed.
public enum FileBytes {
    /// The file's contents, decompressed when it starts with the gzip magic bytes.
    /// `limit`: the most bytes a compressed file may decompress to.
    public static func read(_ path: String, limit: Int = DataLimits.maxDecompressedBytes) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataError.file(path, "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.file(path, "cannot be read (check its permissions)")
        }
        return data.starts(with: [0x1f, 0x8b]) ? try gunzip(data, path: path, limit: limit) : data
    }

    /// Decompresses gzip data (multi-member streams included), refusing to produce more than
    /// `limit` bytes.
    public static func gunzip(_ data: Data, path: String = "<data>", limit: Int = DataLimits.maxDecompressedBytes) throws -> Data {
        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.file(path, "cannot initialise gzip decompression")
        }
        defer { inflateEnd(&stream) }
        var output = Data()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let status: Int32 = buffer.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunk)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output.append(buffer, count: chunk - Int(stream.avail_out))
                guard output.count <= limit else {
                    throw DataError.file(path, "decompresses to more than \(limit) bytes; not a data file Ember can hold (a gzip bomb?)")
                }
                if status == Z_STREAM_END {
                    // Another gzip member may follow.
                    if stream.avail_in == 0 { break }
                    inflateReset(&stream)
                    continue
                }
                guard status == Z_OK else {
                    throw DataError.file(path, "corrupt or truncated gzip data (zlib status \(status))")
                }
                if stream.avail_in == 0 && stream.avail_out != 0 {
                    throw DataError.file(path, "gzip data ends before the end of the compressed stream (truncated file?)")
                }
            }
        }
        return output
    }
}
