import Ember

/// Which gradients travel together: parameters in reverse registration order (the order backward
/// tends to finish them), cut into buckets of at most `capacityBytes` (a parameter larger than
/// that is a bucket of its own; parameters are never split) and of one dtype each. A pure
/// function of the sizes, like PyTorch's `compute_bucket_assignment_by_size`.
public enum BucketAssignment {
    /// Groups of parameter indices, in the order their buckets launch.
    public static func assign(_ parameters: [(bytes: Int, dtype: DType)], capacityBytes: Int) -> [[Int]] {
        var groups: [[Int]] = [], current: [Int] = [], bytes = 0
        for i in parameters.indices.reversed() {
            let p = parameters[i]
            if !current.isEmpty && (bytes + p.bytes > capacityBytes || parameters[current[0]].dtype != p.dtype) {
                groups.append(current)
                (current, bytes) = ([], 0)
            }
            current.append(i)
            bytes += p.bytes
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }
}

/// One bucket of `DataParallel`: its members' gradients side by side in one reduction buffer
/// (each member's slot is where backward writes its gradient), then one "had a gradient" count
/// per member, reduced together.
public final class GradientBucket {
    let members: [Int]        // indices into `parameters`
    let offsets: [Int]        // element offset of each member in `buffer`
    public let buffer: Tensor // gradients, then one "had a gradient" count per member
    /// Each member's gradient slot in `buffer`: backward writes gradients straight here.
    let slots: [Tensor]
    let flagOffset: Int
    /// With a sharded step: the members' values, laid out like their gradients (each
    /// parameter is a view into it), so updated shards are allgathered in place.
    var values: Tensor?
    /// With gradients reduced in bfloat16: the bucket as it travels (`GradientReducer`).
    var travelling: Tensor?
    var arrived = 0
    var request: CommRequest?

    init(members: [Int], parameters: [Tensor], communicator: Communicator) throws {
        self.members = members
        var offsets: [Int] = [], total = 0
        for m in members { offsets.append(total); total += parameters[m].count }
        self.offsets = offsets
        flagOffset = total
        let buffer = try communicator.reductionBuffer(count: total + members.count, dtype: parameters[members[0]].dtype)
        self.buffer = buffer
        slots = zip(members, offsets).map { buffer.flatView(offset: $1, shape: parameters[$0].shape) }
    }
}
