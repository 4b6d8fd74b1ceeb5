/// Drawing indices from categorical distributions: multinomial.
extension Tensor {
    /// `numSamples` indices drawn from each row of non-negative weights (a vector, or a matrix
    /// with one distribution per row), like `torch.multinomial`: int64, shape `[numSamples]` or
    /// `[rows, numSamples]`. Without replacement an index is drawn at most once per row, so a
    /// row needs at least `numSamples` non-zero weights. Draws come from `generator`.
    public func multinomial(_ numSamples: Int, replacement: Bool = false, generator: Generator = .default) -> Tensor {
        require(rank == 1 || rank == 2, "multinomial needs a vector or a matrix of weights, got shape \(shape)")
        require(numSamples > 0, "multinomial: numSamples must be positive, got \(numSamples)")
        let rows = rank == 1 ? 1 : shape[0], categories = shape[rank - 1]
        let weights = doubleScalars
        var out = [Int]()
        out.reserveCapacity(rows * numSamples)
        for r in 0..<rows {
            var w = Array(weights[(r * categories)..<((r + 1) * categories)])
            require(w.allSatisfy { $0 >= 0 && $0.isFinite }, "multinomial: row \(r) has a negative, infinite or NaN weight")
            let positive = w.filter { $0 > 0 }.count
            require(positive > 0, "multinomial: row \(r) has no positive weight")
            require(replacement || positive >= numSamples,
                    "multinomial: cannot draw \(numSamples) samples without replacement from row \(r), which has \(positive) non-zero weights")
            for _ in 0..<numSamples {
                let total = w.reduce(0, +)
                let u = generator.uniform(1)[0] * total
                var acc = 0.0, pick = categories - 1
                for (i, wi) in w.enumerated() where wi > 0 {
                    acc += wi
                    pick = i
                    if u < acc { break }
                }
                out.append(pick)
                if !replacement { w[pick] = 0 }
            }
        }
        return Tensor(indices: out, shape: rank == 1 ? [numSamples] : [rows, numSamples])
    }
}
