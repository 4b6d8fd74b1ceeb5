import Foundation

/// Batches of a dataset, like `torch.utils.data.DataLoader`:
/// `for (input, target) in loader { ... }`.
///
/// Each `for` loop is one epoch. With `shuffle`, epoch `e` visits the samples in an order drawn
/// from `seed` and `e`: different every epoch, identical across runs. The next batch is gathered
/// on a background thread while the current one trains. (`BatchLoader` does the same for
/// batches that are not `(input, target)` pairs.)
public final class DataLoader<D: Dataset>: Sequence {
    public let dataset: D
    private let loader: BatchLoader<(input: Tensor, target: Tensor)>
    public var batchSize: Int { loader.batchSize }
    public var dropLast: Bool { loader.dropLast }
    public var prefetch: Bool { loader.prefetch }
    public var sampler: Sampler { loader.sampler }
    /// The epoch the next iteration will run; advances after each full iteration begins.
    public var epoch: Int { loader.epoch }

    public init(_ dataset: D, batchSize: Int = 1, shuffle: Bool = false, seed: UInt64 = 0, dropLast: Bool = false,
                sampler: Sampler? = nil, prefetch: Bool = true) {
        self.dataset = dataset
        loader = BatchLoader(sampler: sampler ?? (shuffle ? RandomSampler(count: dataset.count, seed: seed) : SequentialSampler(count: dataset.count)),
                             batchSize: batchSize, dropLast: dropLast, prefetch: prefetch) { dataset.batch($0) }
    }

    /// Fixes the epoch of the next iteration (for resuming, or to keep ranks in step).
    public func setEpoch(_ epoch: Int) { loader.setEpoch(epoch) }

    /// Batches per epoch.
    public var count: Int { loader.count }

    func batchIndices() -> [[Int]] { loader.batchIndices() }

    public func makeIterator() -> AnyIterator<(input: Tensor, target: Tensor)> {
        let batches = loader.makeIterator()
        return AnyIterator { batches.next()?.batch }
    }
}

/// Batches of any kind, each made from a list of sample indices (`make`), in the order a
/// sampler gives, the next one prepared on a background thread: what `DataLoader` does, for
/// batches that are not `(input, target)` pairs (tokens and a mask, several inputs). Each
/// element comes with the indices it was made from.
public final class BatchLoader<Batch>: Sequence {
    public let batchSize: Int, dropLast: Bool, prefetch: Bool
    public private(set) var sampler: Sampler
    /// The epoch the next iteration will run; advances after each full iteration begins.
    public private(set) var epoch = 0
    private let make: ([Int]) -> Batch

    public init(sampler: Sampler, batchSize: Int, dropLast: Bool = false, prefetch: Bool = true, make: @escaping ([Int]) -> Batch) {
        require(batchSize > 0, "batch size must be positive, got \(batchSize)")
        self.sampler = sampler
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.make = make
    }

    /// Fixes the epoch of the next iteration (for resuming, or to keep ranks in step).
    public func setEpoch(_ epoch: Int) { self.epoch = epoch }

    /// Batches per epoch.
    public var count: Int { dropLast ? sampler.count / batchSize : (sampler.count + batchSize - 1) / batchSize }

    /// Batches of indices for the current epoch.
    func batchIndices() -> [[Int]] {
        let epoch = EpochBatches(sampler, batchSize: batchSize, dropLast: dropLast)
        return (0..<epoch.count).map(epoch.indices)
    }

    public func makeIterator() -> AnyIterator<(indices: [Int], batch: Batch)> {
        sampler.setEpoch(epoch)
        let batches = EpochBatches(sampler, batchSize: batchSize, dropLast: dropLast)
        epoch += 1
        let make = self.make
        if !prefetch {
            var i = 0
            return AnyIterator {
                guard i < batches.count else { return nil }
                defer { i += 1 }
                let indices = batches.indices(i)
                return (indices, make(indices))
            }
        }
        let producer = Prefetcher(count: batches.count) { i in
            let indices = batches.indices(i)
            return (indices, make(indices))
        }
        return AnyIterator { producer.next() }
    }
}

/// An epoch's order cut into batches one at a time: a corpus of 40M windows would otherwise hold
/// 3M small arrays (half a gigabyte) for the epoch. The order is kept in 32 bits where the
/// sampler can make it so.
struct EpochBatches: Sendable {
    private let compact: [Int32]?, wide: [Int]
    let batchSize: Int, count: Int

    init(_ sampler: Sampler, batchSize: Int, dropLast: Bool) {
        compact = sampler.compactIndices()
        wide = compact == nil ? sampler.indices() : []
        self.batchSize = batchSize
        let n = compact?.count ?? wide.count
        count = dropLast ? n / batchSize : (n + batchSize - 1) / batchSize
    }

    func indices(_ i: Int) -> [Int] {
        let n = compact?.count ?? wide.count
        let r = (i * batchSize)..<Swift.min((i + 1) * batchSize, n)
        return compact.map { c in r.map { Int(c[$0]) } } ?? Array(wide[r])
    }
}

/// Produces items `0..<count` in order on a background thread, at most `depth` ahead.
final class Prefetcher<Item>: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Item] = []
    private var produced = 0, consumed = 0
    private var cancelled = false
    private let count: Int, depth: Int

    init(count: Int, depth: Int = 2, make: @escaping (Int) -> Item) {
        self.count = count
        self.depth = depth
        let thread = Thread { [self] in
            for i in 0..<count {
                condition.lock()
                while ready.count >= depth && !cancelled { condition.wait() }
                let stop = cancelled
                condition.unlock()
                if stop { return }
                let item = noGrad { make(i) }
                condition.lock()
                ready.append(item)
                produced += 1
                condition.broadcast()
                condition.unlock()
            }
        }
        thread.name = "ember.prefetch"
        thread.start()
    }

    func next() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        guard consumed < count else { return nil }
        while ready.isEmpty { condition.wait() }
        consumed += 1
        let item = ready.removeFirst()
        condition.broadcast()
        return item
    }

    deinit {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
