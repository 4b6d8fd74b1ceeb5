import Ember
import Foundation

/// The optimizer step of data-parallel training, optionally sharded over the ranks.
///
/// Sharded (`DataParallel(shardOptimizerStep: true)`), each bucket's gradients are
/// reduce-scattered instead of allreduced, each rank updates only the parameter elements of its
/// shard, and the updated shards are allgathered into every replica (the parameters live in the
/// buckets' `values`, so this is in place). The bytes moved equal an allreduce's; the update, with
/// its reads of parameters, gradients and optimizer state, is divided by the world size. This is
/// ZeRO stage 1 (Rajbhandari et al., 2020): each rank also keeps optimizer state for its shard
/// only (1/world of it); `optimizerStateDict` assembles the whole for checkpoints.
extension DataParallel {
    /// Whether a sharded step should pay off for a model of `parameterCount` parameters: it saves
    /// (world − 1)/world of the optimizer's pass over weights, gradients and state, and costs a
    /// few microseconds a step (one more collective, a flags allreduce, the slicing). For SGD
    /// with momentum here that pass takes about 0.13 µs per thousand parameters, so the saving
    /// passes the cost at roughly 100,000 parameters; below, a two-rank seednet (61 parameters)
    /// ran 25% slower sharded, a cnn (62k) the same.
    public static func shardingPaysOff(parameterCount: Int, worldSize: Int) -> Bool {
        worldSize > 1 && parameterCount >= 100_000
    }

    /// Averages the gradients and takes one optimizer step, clipping first like `GradClip`
    /// (the joint 2-norm over all ranks' gradients, then values). Equivalent to `synchronize()`,
    /// the clipping calls and `optimizer.step()`, which is what it does when not sharded.
    /// Sharded, the optimizer must update element by element (`Optimizer.updatesElementwise`).
    ///
    /// After a sharded step each `.grad` holds the average only on this rank's shard (elsewhere,
    /// this rank's own contribution); use `synchronize()` when full gradients are needed.
    /// Parameters the optimizer holds outside this DataParallel's module are stepped whole with
    /// their local gradients, as `optimizer.step()` would.
    /// - Throws: `CommunicatorError` from the collectives, or when a sharded step is asked of an
    ///   optimizer that does not update elementwise.
    public func step(_ optimizer: Optimizer, clipNorm: Double? = nil, clipValue: Double? = nil) throws {
        guard shardsOptimizerStep && syncEnabled else {
            try synchronize()
            let params = optimizer.paramGroups.flatMap(\.params)
            if let clipNorm { GradClip.clipNorm(params, maxNorm: clipNorm) }
            if let clipValue { GradClip.clipValue(params, clipValue: clipValue) }
            optimizer.step()
            return
        }
        try reducer.shardedStep(optimizer, clipNorm: clipNorm, clipValue: clipValue)
    }

    /// The optimizer's whole state dict, the same on every rank: with a sharded step each rank
    /// holds per-element state for its own shard only, so every rank must call this (it is a
    /// collective) to save or inspect it. Unsharded, it is `optimizer.stateDict()`. The
    /// optimizer itself is left as it is; `loadStateDict` of the result works sharded or not.
    public func optimizerStateDict(_ optimizer: Optimizer) throws -> (tensors: [String: Tensor], groups: [[String: Double]]) {
        try reducer.optimizerStateDict(optimizer)
    }
}

/// The sharded step's parts: which elements are this rank's, the update of those, the state dict.
extension GradientReducer {
    /// Reduce-scatter (usually done by backward's end), clip and update this rank's shard,
    /// allgather the updated shards.
    func shardedStep(_ optimizer: Optimizer, clipNorm: Double?, clipValue: Double?) throws {
        guard optimizer.updatesElementwise else {
            throw CommunicatorError.mismatch("\(type(of: optimizer)) does not declare its update elementwise (updatesElementwise), so a sharded step would update each shard with the wrong values; use DataParallel(shardOptimizerStep: false)")
        }
        defer { finishStep() }
        // Backward's end has usually reduce-scattered already.
        if phase != .reduced { try reduceBuckets() }
        let (index, foreign) = optimizerIndex(optimizer)
        var slices: [ParameterSlice] = []
        for b in buckets {
            for (k, m) in b.members.enumerated() {
                let had = hadGradient(b, k), own = ownedElements(of: m)
                parameters[m].grad = had ? b.slots[k] : nil
                guard had, !own.isEmpty, let i = index[m] else { continue }
                slices.append(ParameterSlice(index: i, range: own, gradient: b.buffer.flatView(offset: b.offsets[k] + own.lowerBound, shape: [own.count])))
            }
        }
        for (i, p) in foreign { if let g = p.grad { slices.append(ParameterSlice(index: i, range: 0..<p.count, gradient: g.reshape([p.count]))) } }
        try clip(slices, norm: clipNorm, value: clipValue)
        optimizer.step(slices: slices)
        for b in buckets { if let values = b.values { try communicator.allgatherShards(values) } }
        try stepEnded()
    }

    /// Each of the reducer's parameters' index in `optimizer.state` (nil when the
    /// optimizer does not hold it), and the optimizer's other parameters with their indices.
    private func optimizerIndex(_ optimizer: Optimizer) -> (index: [Int?], foreign: [(Int, Tensor)]) {
        var position: [ObjectIdentifier: Int] = [:]
        let all = optimizer.paramGroups.flatMap(\.params)
        for (i, p) in all.enumerated() { position[ObjectIdentifier(p)] = i }
        let index = parameters.map { position[ObjectIdentifier($0)] }
        let mine = Set(index.compactMap { $0 })
        return (index, all.enumerated().filter { !mine.contains($0.offset) }.map { ($0.offset, $0.element) })
    }

    /// Clipping on shards: the squared norms of all ranks' shards add up to the global one.
    private func clip(_ slices: [ParameterSlice], norm maxNorm: Double?, value: Double?) throws {
        if let maxNorm {
            let local = slices.reduce(0.0) { sum, s in
                let g = s.gradient.to(.float64)
                return sum + (g * g).sum().doubleItem()
            }
            let norm = Foundation.sqrt(try communicator.allreduceSum([local])[0])
            if let scale = GradClip.scale(norm: norm, maxNorm: maxNorm) {
                noGrad { for s in slices { s.gradient.copy_(s.gradient * Tensor(scalar: scale, dtype: s.gradient.dtype)) } }
            }
        }
        if let value {
            noGrad { for s in slices { s.gradient.copy_(s.gradient.clamp(min: -value, max: value)) } }
        }
    }

    /// `DataParallel.optimizerStateDict`.
    func optimizerStateDict(_ optimizer: Optimizer) throws -> (tensors: [String: Tensor], groups: [[String: Double]]) {
        let local = optimizer.stateDict()
        guard shardsOptimizerStep else { return local }
        let (index, foreign) = optimizerIndex(optimizer)
        var member: [Int: Int] = [:]  // optimizer index → parameter index here
        for (m, i) in index.enumerated() { if let i { member[i] = m } }
        // State of parameters outside the module is this rank's own, as it would be unsharded.
        let outside = Set(foreign.map { "\($0.0)" })
        var whole = local.tensors.filter { outside.contains(String($0.key.prefix { $0 != "." })) }
        for e in try StateEntry.union(of: optimizer, owned: { member[$0].map(self.ownedElements) }, comm: communicator) {
            let m = member[e.index]!, p = parameters[m]
            let own = ownedElements(of: m)
            let mine = optimizer.state[e.index]?[e.key]
            let tensor: Tensor
            if e.perElement {
                // Each rank contributes its own elements and zeros elsewhere: the sum is the whole.
                tensor = Tensor.zeros(p.shape, dtype: e.dtype)
                if let mine, !own.isEmpty {
                    let source = mine.shape == p.shape ? mine.flatView(offset: own.lowerBound, shape: [own.count]) : mine
                    tensor.flatView(offset: own.lowerBound, shape: [own.count]).copy_(source.reshape([own.count]))
                }
                try communicator.allreduce(tensor, op: .sum)
            } else {
                // Step counts and the like: the rank holding the parameter's first element updated it.
                let (bi, k) = place[m]
                let first = (0..<communicator.worldSize).first {
                    Shards.range(count: buckets[bi].flagOffset, rank: $0, world: communicator.worldSize).contains(buckets[bi].offsets[k])
                } ?? 0
                tensor = mine?.clone() ?? Tensor.zeros(e.shape, dtype: e.dtype)
                try communicator.broadcast(tensor, root: e.holders.contains(first) ? first : e.holders.min()!)
            }
            whole["\(e.index).\(e.key)"] = tensor
        }
        return (whole, local.groups)
    }

    /// This rank's elements of parameter `m` (a range within the flattened parameter).
    func ownedElements(of m: Int) -> Range<Int> {
        let (bi, k) = place[m]
        let own = communicator.shard(of: buckets[bi].flagOffset), offset = buckets[bi].offsets[k], count = parameters[m].count
        let lo = min(max(own.lowerBound - offset, 0), count)
        return lo..<max(min(own.upperBound - offset, count), lo)
    }
}

/// One optimizer state tensor as all ranks together know it: which parameter and key, its
/// shape and dtype, whether it is per-element, and which ranks hold it.
struct StateEntry {
    let index: Int
    let key: String
    let perElement: Bool
    let dtype: DType
    let shape: [Int]
    var holders: Set<Int>

    /// Every rank's state entries, merged in a fixed order (so all ranks then issue the same
    /// collectives). A tensor is per-element when shaped like its parameter, or like this rank's
    /// part of it (`owned`) when that is a proper part. Parameters `owned` says nothing about are
    /// left out.
    static func union(of optimizer: Optimizer, owned: (Int) -> Range<Int>?, comm: Communicator) throws -> [StateEntry] {
        let params = optimizer.paramGroups.flatMap(\.params)
        // Encoded as doubles for the allgather: index, per-element, dtype, rank, shape, key length, key bytes.
        var mine: [Double] = []
        for (i, state) in optimizer.state {
            guard let part = owned(i) else { continue }
            let p = params[i]
            for (key, t) in state {
                let perElement = t.rank > 0 && p.count > 1 && (t.shape == p.shape || (part.count < p.count && t.shape == [part.count]))
                let shape = perElement ? p.shape : t.shape
                mine += [Double(i), perElement ? 1 : 0, Double(DType.allCases.firstIndex(of: t.dtype)!), Double(shape.count)]
                mine += shape.map(Double.init) + [Double(key.utf8.count)] + key.utf8.map(Double.init)
            }
        }
        // `allgather` takes equal lengths: pad to the longest.
        let lengths = try comm.allgather([Double(mine.count)]).map { Int($0[0]) }
        mine += [Double](repeating: 0, count: lengths.max()! - mine.count)
        var merged: [String: StateEntry] = [:]
        for (rank, values) in try comm.allgather(mine).enumerated() {
            var at = 0
            func next() -> Int { defer { at += 1 }; return Int(values[at]) }
            while at < lengths[rank] {
                let i = next(), perElement = next() == 1, dtype = DType.allCases[next()]
                let shape = (0..<next()).map { _ in next() }
                let key = String(decoding: (0..<next()).map { _ in UInt8(next()) }, as: UTF8.self)
                merged["\(i).\(key)", default: StateEntry(index: i, key: key, perElement: perElement, dtype: dtype, shape: shape, holders: [])]
                    .holders.insert(rank)
            }
        }
        return merged.values.sorted { ($0.index, $0.key) < ($1.index, $1.key) }
    }
}
