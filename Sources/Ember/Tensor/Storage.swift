import Synchronization

/// A flat, 64-byte aligned, uninitialised-on-allocation buffer that tensors view.
///
/// Tensors are always contiguous and row-major, so a storage plus a shape is the whole layout.
/// Reshape and detach share a storage; every other op writes a new one.
public final class Storage: @unchecked Sendable {
    public let byteCount: Int
    let raw: UnsafeMutableRawPointer

    /// Live storages and their bytes, for leak tests and memory reports.
    static let liveCount = Atomic<Int>(0)
    static let liveBytes = Atomic<Int>(0)

    init(byteCount: Int) {
        self.byteCount = byteCount
        // Allocate at least one byte so zero-element tensors still own a valid pointer.
        raw = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        Storage.liveCount.add(1, ordering: .relaxed)
        Storage.liveBytes.add(byteCount, ordering: .relaxed)
    }

    deinit {
        raw.deallocate()
        Storage.liveCount.subtract(1, ordering: .relaxed)
        Storage.liveBytes.subtract(byteCount, ordering: .relaxed)
    }

    @inline(__always)
    func pointer<T>(as type: T.Type) -> UnsafeMutablePointer<T> {
        raw.assumingMemoryBound(to: T.self)
    }
}

/// Counters of what the library currently holds, for tests and memory reports.
public enum MemoryStats {
    /// Number of tensor storages alive now.
    public static var liveStorages: Int { Storage.liveCount.load(ordering: .relaxed) }
    /// Bytes held by live tensor storages.
    public static var liveStorageBytes: Int { Storage.liveBytes.load(ordering: .relaxed) }
    /// Autograd graph nodes alive now.
    public static var liveGraphNodes: Int { GradNode.liveCount.load(ordering: .relaxed) }
}
