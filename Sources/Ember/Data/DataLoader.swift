import Foundation

/// Batches of a dataset, like `torch.utils.data.DataLoader`:
/// `for (input, target) in loader { ... }`.
///
/// Each `for` loop is one epoch. With `shuffle`, epoch `e` visits the samples in an order drawn
/// from `seed` and `e`: different every epoch, identical across runs. The next batch is gathered
/// on a background thread while the current one trains.
public final class DataLoader<D: Dataset>: Sequence {
    public let dataset: D
    public let batchSize: Int, dropLast: Bool, prefetch: Bool
    public private(set) var sampler: Sampler
    /// The epoch the next iteration will run; advances after each full iteration begins.
    public private(set) var epoch = 0

    public init(_ dataset: D, batchSize: Int = 1, shuffle: Bool = false, seed: UInt64 = 0, dropLast: Bool = false,
                sampler: Sampler? = nil, prefetch: Bool = true) {
        require(batchSize > 0, "batch size must be positive, got \(batchSize)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.sampler = sampler ?? (shuffle ? RandomSampler(count: dataset.count, seed: seed) : SequentialSampler(count: dataset.count))
    }

    /// Fixes the epoch of the next iteration (for resuming, or to keep ranks in step).
    public func setEpoch(_ epoch: Int) { self.epoch = epoch }

    /// Batches per epoch.
    public var count: Int { dropLast ? sampler.count / batchSize : (sampler.count + batchSize - 1) / batchSize }

    /// Batches of indices for the current epoch.
    func batchIndices() -> [[Int]] {
        let order = sampler.indices()
        var batches = stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0..<Swift.min($0 + batchSize, order.count)]) }
        if dropLast, let last = batches.last, last.count < batchSize { batches.removeLast() }
        return batches
    }

    public func makeIterator() -> AnyIterator<(input: Tensor, target: Tensor)> {
        sampler.setEpoch(epoch)
        let batches = batchIndices()
        epoch += 1
        let dataset = self.dataset
        if !prefetch {
            var i = 0
            return AnyIterator {
                guard i < batches.count else { return nil }
                defer { i += 1 }
                return dataset.batch(batches[i])
            }
        }
        let producer = Prefetcher(count: batches.count) { dataset.batch(batches[$0]) }
        return AnyIterator { producer.next() }
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
