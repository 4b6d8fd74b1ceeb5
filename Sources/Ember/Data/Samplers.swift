/// An order of dataset indices for one epoch. `setEpoch(_:)` selects the epoch, so shuffling
/// samplers give a new order each epoch and the same order for the same seed and epoch.
public protocol Sampler {
    /// Number of indices one epoch yields.
    var count: Int { get }
    /// The indices for the current epoch.
    func indices() -> [Int]
    /// The same indices as 32-bit integers, made without the 64-bit array (half the memory for
    /// an epoch of tens of millions of windows); nil when the sampler has no such form.
    func compactIndices() -> [Int32]?
    mutating func setEpoch(_ epoch: Int)
}

extension Sampler {
    public func compactIndices() -> [Int32]? { nil }
}

/// `0, 1, ..., count-1`.
public struct SequentialSampler: Sampler, Sequence {
    public let count: Int
    public init(count: Int) { self.count = count }
    public func indices() -> [Int] { Array(0..<count) }
    public mutating func setEpoch(_ epoch: Int) {}
    public func makeIterator() -> IndexingIterator<[Int]> { indices().makeIterator() }
}

/// A random permutation per epoch, drawn from `seed` and the epoch number.
public struct RandomSampler: Sampler, Sequence {
    public let count: Int, seed: UInt64
    public private(set) var epoch = 0

    public init(count: Int, seed: UInt64 = 0) {
        self.count = count
        self.seed = seed
    }

    public func indices() -> [Int] { Ember.Generator(seed: epochSeed(seed, epoch)).permutation(count) }
    public mutating func setEpoch(_ epoch: Int) { self.epoch = epoch }
    public func makeIterator() -> IndexingIterator<[Int]> { indices().makeIterator() }
}

/// Mixes a base seed with an epoch so consecutive epochs get unrelated streams.
func epochSeed(_ seed: UInt64, _ epoch: Int) -> UInt64 {
    seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03 &+ 1
}

/// This rank's share of the dataset, like `torch.utils.data.DistributedSampler`: every rank
/// shuffles identically (seed + epoch), then takes every `worldSize`-th index starting at `rank`.
/// Shares are disjoint and equal: the order is padded by repeating its start, or (`dropLast`)
/// trimmed, to a multiple of `worldSize`.
public struct DistributedSampler: Sampler, Sequence {
    public let datasetCount: Int, rank: Int, worldSize: Int, shuffle: Bool, seed: UInt64, dropLast: Bool
    public private(set) var epoch = 0

    public init(count: Int, rank: Int, worldSize: Int, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false) {
        require(worldSize > 0 && rank >= 0 && rank < worldSize, "invalid rank \(rank) for world size \(worldSize)")
        datasetCount = count
        self.rank = rank
        self.worldSize = worldSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
    }

    /// Indices per rank per epoch.
    public var count: Int {
        dropLast ? datasetCount / worldSize : (datasetCount + worldSize - 1) / worldSize
    }

    public func indices() -> [Int] {
        share(shuffle ? Ember.Generator(seed: epochSeed(seed, epoch)).permutation(datasetCount) : Array(0..<datasetCount))
    }

    public func compactIndices() -> [Int32]? {
        guard datasetCount <= Int(Int32.max) else { return nil }
        return share(shuffle ? Ember.Generator(seed: epochSeed(seed, epoch)).permutation(datasetCount, as: Int32.self)
                             : (0..<Int32(datasetCount)).map { $0 })
    }

    /// This rank's share of the epoch's whole order (padded or trimmed to equal shares).
    private func share<T: FixedWidthInteger>(_ whole: [T]) -> [T] {
        var order = whole
        let total = count * worldSize
        if total > order.count {
            var padding: [T] = []
            while padding.count < total - order.count { padding += order.prefix(total - order.count - padding.count) }
            order += padding
        } else if total < order.count {
            order.removeLast(order.count - total)
        }
        if worldSize == 1 { return order }  // no second copy of a long epoch
        return stride(from: rank, to: total, by: worldSize).map { order[$0] }
    }

    public mutating func setEpoch(_ epoch: Int) { self.epoch = epoch }
    public func makeIterator() -> IndexingIterator<[Int]> { indices().makeIterator() }
}

/// For evaluation across ranks: rank `r` takes indices `r, r + w, r + 2w, ...` with no padding
/// and no dropping, so summed metrics count every sample exactly once (shares may differ by one).
public struct DistributedEvalSampler: Sampler, Sequence {
    public let datasetCount: Int, rank: Int, worldSize: Int

    public init(count: Int, rank: Int, worldSize: Int) {
        require(worldSize > 0 && rank >= 0 && rank < worldSize, "invalid rank \(rank) for world size \(worldSize)")
        datasetCount = count
        self.rank = rank
        self.worldSize = worldSize
    }

    public var count: Int { (datasetCount - rank + worldSize - 1) / worldSize }
    public func indices() -> [Int] { Array(stride(from: rank, to: datasetCount, by: worldSize)) }
    public mutating func setEpoch(_ epoch: Int) {}
    public func makeIterator() -> IndexingIterator<[Int]> { indices().makeIterator() }
}
