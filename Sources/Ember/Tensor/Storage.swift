import Synchronization

/// A flat, 64-byte aligned buffer that tensors view; its contents start uninitialised.
///
/// Tensors are always contiguous and row-major, so a storage plus a shape is the whole layout.
/// Reshape and detach share a storage; every other op writes a new one. Buffers come from and
/// return to `BufferCache`, so a training loop that allocates the same sizes every step does not
/// go back to the system allocator (or take fresh pages from the kernel) each time.
public final class Storage: @unchecked Sendable {
    public let byteCount: Int
    let raw: UnsafeMutableRawPointer

    /// Live storages and their bytes, for leak tests and memory reports.
    static let liveCount = Atomic<Int>(0)
    static let liveBytes = Atomic<Int>(0)

    init(byteCount: Int) {
        self.byteCount = byteCount
        raw = BufferCache.shared.take(byteCount)
        Storage.liveCount.add(1, ordering: .relaxed)
        Storage.liveBytes.add(byteCount, ordering: .relaxed)
    }

    deinit {
        BufferCache.shared.give(raw, byteCount)
        Storage.liveCount.subtract(1, ordering: .relaxed)
        Storage.liveBytes.subtract(byteCount, ordering: .relaxed)
    }

    @inline(__always)
    func pointer<T>(as type: T.Type) -> UnsafeMutablePointer<T> {
        raw.assumingMemoryBound(to: T.self)
    }
}

/// A caching allocator: freed buffers are kept by size class (powers of two from 256 bytes, and
/// eighths between them above 64 KiB) and handed out again, up to `limit` bytes in the cache.
final class BufferCache: @unchecked Sendable {
    static let shared = BufferCache()

    private struct State {
        var free: [Int: [UnsafeMutableRawPointer]] = [:]
        var cachedBytes = 0
    }
    private let state = Mutex(State())
    /// Most bytes kept for reuse; beyond that, freed buffers go back to the system.
    let limit = 512 << 20

    /// The size class a request is served from.
    static func sizeClass(_ bytes: Int) -> Int {
        if bytes <= 256 { return 256 }
        let power = 1 << (Int.bitWidth - (bytes - 1).leadingZeroBitCount)
        guard power > 64 << 10 else { return power }
        let step = power / 16  // eighths of the lower power of two
        return (bytes + step - 1) / step * step
    }

    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = BufferCache.sizeClass(max(bytes, 1))
        let reused: UnsafeMutableRawPointer? = state.withLock { s in
            guard let p = s.free[size]?.popLast() else { return nil }
            s.cachedBytes -= size
            return p
        }
        return reused ?? UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    }

    func give(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        let size = BufferCache.sizeClass(max(bytes, 1))
        let kept = state.withLock { s in
            guard s.cachedBytes + size <= limit else { return false }
            s.free[size, default: []].append(pointer)
            s.cachedBytes += size
            return true
        }
        if !kept { pointer.deallocate() }
    }

    /// Returns every cached buffer to the system.
    func empty() {
        let all = state.withLock { s in
            defer { s.free = [:]; s.cachedBytes = 0 }
            return s.free.values.flatMap { $0 }
        }
        for p in all { p.deallocate() }
    }

    var cachedBytes: Int { state.withLock { $0.cachedBytes } }
}

/// Counters of what the library currently holds, for tests and memory reports.
public enum MemoryStats {
    /// Number of tensor storages alive now.
    public static var liveStorages: Int { Storage.liveCount.load(ordering: .relaxed) }
    /// Bytes held by live tensor storages.
    public static var liveStorageBytes: Int { Storage.liveBytes.load(ordering: .relaxed) }
    /// Autograd graph nodes alive now.
    public static var liveGraphNodes: Int { GradNode.liveCount.load(ordering: .relaxed) }
    /// Bytes of freed buffers kept for reuse by the caching allocator.
    public static var cachedBytes: Int { BufferCache.shared.cachedBytes }
    /// Returns the caching allocator's spare buffers to the system.
    public static func emptyCache() { BufferCache.shared.empty() }
}
