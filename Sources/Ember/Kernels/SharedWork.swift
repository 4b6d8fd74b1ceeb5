import CEmberProducts

extension Kernels {
    /// Runs `body(worker)` for every worker in `0..<workers` on the rank's product threads (the
    /// OpenMP team oneDNN's products use, already awake), one thread per worker when the team
    /// is that large; otherwise a thread runs several workers in turn (each in increasing order),
    /// and without OpenMP the caller runs them all. A worker's products run on one thread, its
    /// own work being the split (`numThreads` reads 1 inside). Each worker multiplies in the
    /// caller's precision (autocast is per thread).
    static func team(_ workers: Int, _ body: (Int) -> Void) {
        guard workers > 1 else { return workers == 1 ? body(0) : () }
        let precision = Precision.current
        withoutActuallyEscaping(body) { body in
            var work = TeamWork(workers: workers) { worker in autocast(precision) { body(worker) } }
            withUnsafeMutablePointer(to: &work) { pointer in
                ember_parallel(Int32(workers), { data, member, members in
                    let work = data!.assumingMemoryBound(to: TeamWork.self).pointee
                    for worker in stride(from: Int(member), to: work.workers, by: Int(members)) { work.body(worker) }
                }, pointer)
            }
        }
    }

    /// Runs `body(start, end)` over `0..<count` in contiguous runs, one per product thread, when
    /// the rank has several and `count` holds at least two `grain`s; otherwise `body(0, count)`
    /// on the caller. Only for work whose every item is computed alone, so the bits never depend
    /// on the thread count: elementwise activations, row-wise softmax, attention's heads.
    static func share(_ count: Int, grain: Int, _ body: (Int, Int) -> Void) {
        let threads = Swift.min(numThreads, count / Swift.max(grain, 1))
        guard threads > 1 else { return body(0, count) }
        let per = (count + threads - 1) / threads
        team(threads) { run in
            let start = run * per, end = Swift.min(count, start + per)
            if start < end { body(start, end) }
        }
    }
}

/// What each member of `Kernels.team`'s OpenMP team reads.
private struct TeamWork {
    let workers: Int
    let body: (Int) -> Void
}
