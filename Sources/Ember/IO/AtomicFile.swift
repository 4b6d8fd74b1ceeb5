import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes that either happen completely or not at all: the data goes to a temporary file in the
/// same directory, is flushed to disk, and is renamed over the destination.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        _ = try write(to: path) { emit in try data.withUnsafeBytes { try emit($0) } }
    }

    /// Streams what `produce` hands its `emit` into the file, atomically as `write(_:to:)`, and
    /// returns the bytes' CRC-32: a checkpoint of gigabytes is never held in memory whole.
    @discardableResult
    public static func write(to path: String, _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> UInt32 {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let temp = dir + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DataError.file(path, "cannot be written: \(String(cString: strerror(errno)))") }
        var crc = CZlibCRC.start, failure: Int32 = 0
        struct WriteFailed: Error {}
        do {
            try produce { raw in
                crc = CZlibCRC.update(crc, raw)
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n <= 0 { failure = n < 0 ? errno : ENOSPC; throw WriteFailed() }
                    offset += n
                }
            }
            if fsync(fd) != 0 { failure = errno }
        } catch is WriteFailed {
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        close(fd)
        guard failure == 0, rename(temp, path) == 0 else {
            unlink(temp)
            throw DataError.file(path, "could not be written completely: \(String(cString: strerror(failure != 0 ? failure : errno)))")
        }
        syncDirectory(dir)
        return UInt32(crc)
    }

    /// Appends `data` (a line of a log, say) to the file at `path`, creating it: all of it or,
    /// when the write fails (a full disk), none of it, the file cut back to its old length.
    public static func append(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw DataError.file(path, "cannot be written: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let before = lseek(fd, 0, SEEK_END)
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { failure = n < 0 ? errno : ENOSPC; break }
                offset += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        if failure != 0 {
            if before >= 0 { _ = ftruncate(fd, before) }
            throw DataError.file(path, "could not be appended to: \(String(cString: strerror(failure)))")
        }
    }

    /// Flushes a directory entry (so a rename survives a crash).
    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

/// CRC-32 (zlib's), used to detect corrupt or truncated checkpoint files; FNV-1a for short
/// fingerprints (cache keys, the ranks' model signatures).
public enum Checksum {
    public static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { raw in
            UInt32(CZlibCRC.crc(raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count))
        }
    }

    /// The 64-bit FNV-1a hash of the text's UTF-8 bytes.
    public static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}

import CZlib

enum CZlibCRC {
    static var start: UInt { CZlib.crc32(0, nil, 0) }

    static func crc(_ p: UnsafePointer<UInt8>?, _ n: Int) -> UInt {
        update(start, UnsafeRawBufferPointer(start: p, count: n))
    }

    /// `c` continued over `bytes` (zlib takes at most 4 GiB a call).
    static func update(_ c: UInt, _ bytes: UnsafeRawBufferPointer) -> UInt {
        var c = c, offset = 0
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return c }
        while offset < bytes.count {
            let chunk = Swift.min(bytes.count - offset, Int(Int32.max))
            c = CZlib.crc32(c, base + offset, uInt(chunk))
            offset += chunk
        }
        return c
    }
}
