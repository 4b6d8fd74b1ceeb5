/// A collection of `(input, target)` samples, like `torch.utils.data.Dataset`.
///
/// Conform with `count` and `subscript(_:)`; `batch(_:)` has a default that stacks samples, and
/// tensor-backed datasets override it to gather a whole batch at once.
public protocol Dataset {
    var count: Int { get }
    subscript(_ index: Int) -> (input: Tensor, target: Tensor) { get }
    /// The samples at `indices`, stacked along a new first dimension.
    func batch(_ indices: [Int]) -> (input: Tensor, target: Tensor)
}

extension Dataset {
    public func batch(_ indices: [Int]) -> (input: Tensor, target: Tensor) {
        let samples = indices.map { self[$0] }
        return (Tensor.stack(samples.map(\.input)), Tensor.stack(samples.map(\.target)))
    }
}

/// Samples are rows of two tensors: `inputs[i]` and `targets[i]`.
public struct TensorDataset: Dataset {
    public let inputs: Tensor
    public let targets: Tensor

    public init(inputs: Tensor, targets: Tensor) {
        require(inputs.rank >= 1 && targets.rank >= 1 && inputs.shape[0] == targets.shape[0],
                     "TensorDataset needs inputs and targets with the same first dimension, got \(inputs.shape) and \(targets.shape)")
        self.inputs = inputs.detach()
        self.targets = targets.detach()
    }

    public var count: Int { inputs.shape[0] }

    public subscript(_ index: Int) -> (input: Tensor, target: Tensor) {
        (inputs[index], targets[index])
    }

    public func batch(_ indices: [Int]) -> (input: Tensor, target: Tensor) {
        let index = Tensor(indices: indices)
        return (inputs.indexSelect(dim: 0, index: index), targets.indexSelect(dim: 0, index: index))
    }

    /// Number of classes when targets are int64 labels (largest label + 1).
    public var numClasses: Int { (targets.intScalars.max() ?? -1) + 1 }
}

/// The samples of `base` at `indices`, like `torch.utils.data.Subset`.
public struct Subset<Base: Dataset>: Dataset {
    public let base: Base
    public let indices: [Int]

    public init(_ base: Base, indices: [Int]) {
        require(indices.allSatisfy { $0 >= 0 && $0 < base.count }, "Subset index out of range for a dataset of \(base.count)")
        self.base = base
        self.indices = indices
    }

    public var count: Int { indices.count }
    public subscript(_ index: Int) -> (input: Tensor, target: Tensor) { base[indices[index]] }
    public func batch(_ batchIndices: [Int]) -> (input: Tensor, target: Tensor) { base.batch(batchIndices.map { indices[$0] }) }
}

/// Splits a dataset at random into parts of the given sizes (or fractions summing to 1), like
/// `torch.utils.data.random_split`; the same seed gives the same split.
public func randomSplit<D: Dataset>(_ dataset: D, lengths: [Int], generator: Generator) throws -> [Subset<D>] {
    guard lengths.allSatisfy({ $0 >= 0 }), lengths.reduce(0, +) == dataset.count else {
        throw DataError("random split sizes \(lengths) do not add up to the dataset size \(dataset.count)")
    }
    let order = generator.permutation(dataset.count)
    var start = 0
    return lengths.map { n in
        defer { start += n }
        return Subset(dataset, indices: Array(order[start..<(start + n)]))
    }
}

public func randomSplit<D: Dataset>(_ dataset: D, fractions: [Double], generator: Generator) throws -> [Subset<D>] {
    guard fractions.allSatisfy({ $0 >= 0 }), abs(fractions.reduce(0, +) - 1) < 1e-6 else {
        throw DataError("random split fractions \(fractions) must be non-negative and add up to 1")
    }
    // Floors first, then the remainder one by one, as PyTorch does.
    var lengths = fractions.map { Int((Double(dataset.count) * $0).rounded(.down)) }
    for i in 0..<(dataset.count - lengths.reduce(0, +)) { lengths[i % lengths.count] += 1 }
    return try randomSplit(dataset, lengths: lengths, generator: generator)
}

/// `base` with a per-sample transform applied to each input.
public struct TransformedDataset<Base: Dataset>: Dataset {
    public let base: Base
    public let transform: Transform

    public init(_ base: Base, transform: Transform) {
        self.base = base
        self.transform = transform
    }

    public var count: Int { base.count }
    public subscript(_ index: Int) -> (input: Tensor, target: Tensor) {
        let s = base[index]
        return (transform(s.input), s.target)
    }
    public func batch(_ indices: [Int]) -> (input: Tensor, target: Tensor) {
        let b = base.batch(indices)
        return (transform.batch(b.input), b.target)
    }
}
