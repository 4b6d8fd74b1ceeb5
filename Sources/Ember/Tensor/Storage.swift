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
    /// For memory Ember did not allocate: what keeps it alive (nil for cached buffers).
    private let owner: AnyObject?

    /// Live storages and their bytes, for leak tests and memory reports.
    static let liveCount = Atomic<Int>(0)
    static let liveBytes = Atomic<Int>(0)
    /// The most bytes live storages have held at once (what the cache may keep: `BufferCache`).
    static let peakLiveBytes = Atomic<Int>(0)

    init(byteCount: Int) {
        self.byteCount = byteCount
        raw = BufferCache.shared.take(byteCount)
        owner = nil
        Storage.liveCount.add(1, ordering: .relaxed)
        let live = Storage.liveBytes.add(byteCount, ordering: .relaxed).newValue
        var peak = Storage.peakLiveBytes.load(ordering: .relaxed)
        while live > peak {
            let (exchanged, current) = Storage.peakLiveBytes.compareExchange(expected: peak, desired: live, ordering: .relaxed)
            if exchanged { break }
            peak = current
        }
    }

    /// Memory someone else allocated (a shared-memory segment, say), kept alive by `owner` and
    /// never returned to the cache.
    init(external raw: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.byteCount = byteCount
        self.raw = raw
        self.owner = owner
    }

    deinit {
        guard owner == nil else { return }
        BufferCache.shared.give(raw, byteCount)
        Storage.liveCount.subtract(1, ordering: .relaxed)
        Storage.liveBytes.subtract(byteCount, ordering: .relaxed)
    }

    @inline(__always)
    func pointer<T>(as type: T.Type) -> UnsafeMutablePointer<T> {
        raw.assumingMemoryBound(to: T.self)
    }
}

/// A caching allocator: freed buffers are kept by size class (powers of two up to 64 KiB, then
/// eighths between powers of two) and handed out again, up to `limit` bytes in the cache: 512
/// MiB, or as much as the tensors have ever held at once when that is more. A step of a large
/// model (a 124M GPT-2's logits alone are 100 MB) frees and asks again for gigabytes; beyond a
/// fixed limit those went back to the system and came back as fresh pages the kernel zeroes
/// (a fault per 4 KiB page), which took a tenth of such a step.
final class BufferCache: @unchecked Sendable {
    static let shared = BufferCache()

    private struct State {
        var free = [[UnsafeMutableRawPointer]](repeating: [], count: BufferCache.classCount)
        var cachedBytes = 0
    }
    private let state = Mutex(State())
    /// Most bytes kept for reuse; beyond that, freed buffers go back to the system.
    var limit: Int { Swift.max(512 << 20, Storage.peakLiveBytes.load(ordering: .relaxed)) }
    static let classCount = 9 + 8 * 48

    /// The size class a request is served from: its index and its size in bytes.
    static func sizeClass(_ bytes: Int) -> (index: Int, size: Int) {
        if bytes <= 256 { return (0, 256) }
        let log = Int.bitWidth - (bytes - 1).leadingZeroBitCount  // 2^log ≥ bytes
        if log <= 16 { return (log - 8, 1 << log) }
        let step = 1 << (log - 4)                                   // sixteenths of 2^log
        let k = (bytes + step - 1) / step                           // 9...16
        return (9 + (log - 17) * 8 + (k - 9), k * step)
    }

    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        let c = BufferCache.sizeClass(max(bytes, 1))
        guard c.index < BufferCache.classCount else { return .allocate(byteCount: c.size, alignment: 64) }
        let reused: UnsafeMutableRawPointer? = state.withLock { s in
            guard let p = s.free[c.index].popLast() else { return nil }
            s.cachedBytes -= c.size
            return p
        }
        return reused ?? UnsafeMutableRawPointer.allocate(byteCount: c.size, alignment: 64)
    }

    func give(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        let c = BufferCache.sizeClass(max(bytes, 1))
        let kept = c.index < BufferCache.classCount && state.withLock { s in
            guard s.cachedBytes + c.size <= limit else { return false }
            s.free[c.index].append(pointer)
            s.cachedBytes += c.size
            return true
        }
        if !kept { pointer.deallocate() }
    }

    /// Returns every cached buffer to the system.
    func empty() {
        let all = state.withLock { s in
            defer { s.free = [[UnsafeMutableRawPointer]](repeating: [], count: BufferCache.classCount); s.cachedBytes = 0 }
            return s.free.flatMap { $0 }
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
