import CEmberProducts

extension Kernels {
    /// Runs `body(start, end)` over `0..<count` in contiguous runs, one per product thread (the
    /// OpenMP team oneDNN's products use, already awake), when the rank has several and `count`
    /// holds at least two `grain`s; otherwise `body(0, count)` on the caller. Only for work whose
    /// every item is computed alone, so the bits never depend on the thread count: elementwise
    /// activations, row-wise softmax. Each run multiplies in the caller's precision (autocast is
    /// per thread).
    static func share(_ count: Int, grain: Int, _ body: (Int, Int) -> Void) {
        let threads = Swift.min(Int(ember_wanted_threads()), count / Swift.max(grain, 1))
        guard threads > 1 else { return body(0, count) }
        let precision = Precision.current
        withoutActuallyEscaping(body) { body in
            var work = SharedWork(count: count) { start, end in autocast(precision) { body(start, end) } }
            withUnsafeMutablePointer(to: &work) { pointer in
                ember_parallel(Int32(threads), { data, member, members in
                    let work = data!.assumingMemoryBound(to: SharedWork.self).pointee
                    let per = (work.count + Int(members) - 1) / Int(members)
                    let start = Int(member) * per, end = Swift.min(work.count, start + per)
                    if start < end { work.body(start, end) }
                }, pointer)
            }
        }
    }
}

/// What each member of `Kernels.share`'s team reads.
private struct SharedWork {
    let count: Int
    let body: (Int, Int) -> Void
}
