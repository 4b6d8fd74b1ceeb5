import XCTest
import Foundation
import CEmberSupport
import Ember
@testable import EmberDistributed

final class CommunicatorTests: XCTestCase {
    func testLocalCollectives() throws {
        let world = LocalWorld(size: 3)
        let results = ResultBox<[String]>()
        try world.run { comm in
            let r = Double(comm.rank)
            var values = [r, 10 * r + 1]
            try values.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 2, op: .sum) }
            var avg: [Float] = [Float(r)]
            try avg.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 1, op: .average) }
            var mx = [r], mn = [r]
            try mx.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 1, op: .max) }
            try mn.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 1, op: .min) }
            let b = try comm.broadcast([r + 5, r], root: 1)
            let gathered = try comm.allgather([r * r])
            let t = Tensor([Float(r), 1])
            try comm.allreduceAsync(t.mutablePointer(Float.self), count: 2, op: .sum).wait()
            try comm.barrier()
            results.set(comm.rank, ["\(values)", "\(avg)", "\(mx)\(mn)", "\(b)", "\(gathered)", "\(t.scalars)"])
        }
        for rank in 0..<3 {
            XCTAssertEqual(results.get(rank), ["[3.0, 33.0]", "[1.0]", "[2.0][0.0]", "[6.0, 1.0]", "[[0.0], [1.0], [4.0]]", "[3.0, 3.0]"])
        }
    }

    /// The vectorised sums shared memory and the MPI ring use: rank order kept, the output may be
    /// any one of the inputs, lengths that are no multiple of a vector or a block.
    func testSumsAddInRankOrderWhenTheOutputIsAnInput() {
        let n = 2500
        func value(_ i: Int, _ rank: Int) -> Double {
            let wiggle = Double((i * 7919 + rank * 104_729) % 2003) * 1e-3
            return wiggle - 1 + Double(rank) * 1e8  // large and small: the order of additions shows
        }
        for count in 1...4 {
            for outIndex in 0..<count {
                let inputs = (0..<count).map { r in
                    let p = UnsafeMutablePointer<Double>.allocate(capacity: n)
                    for i in 0..<n { p[i] = value(i, r) }
                    return p
                }
                defer { inputs.forEach { $0.deallocate() } }
                var expected = [Double](repeating: 0, count: n)
                for i in 0..<n {
                    var sum = inputs[0][i]
                    for r in 1..<count { sum += inputs[r][i] }
                    expected[i] = sum
                }
                var list = inputs.map { Optional($0) }
                ember_sum_f64(inputs[outIndex], &list, Int32(count), n)
                let wrong = (0..<n).filter { inputs[outIndex][$0] != expected[$0] }.count
                XCTAssertEqual(wrong, 0, "\(count) inputs, out = input \(outIndex): \(wrong) of \(n) sums differ")
            }
        }
        var a: [Float] = (0..<37).map { Float($0) * 0.1 }
        let b: [Float] = (0..<37).map { 1 / Float($0 + 1) }
        let sum = zip(a, b).map { $0 + $1 }
        b.withUnsafeBufferPointer { source in
            a.withUnsafeMutableBufferPointer { ReduceOp.accumulate(.sum, into: $0.baseAddress!, from: source.baseAddress!, count: 37) }
        }
        XCTAssertEqual(a, sum)
    }

    func testACollectiveThatNeverCompletesTimesOutNamingRankAndOperation() {
        let world = LocalWorld(size: 2, timeout: 0.3)
        XCTAssertThrowsError(try world.run { comm in
            if comm.rank == 0 { _ = try comm.allreduceSum([1]) }
        }) { error in
            XCTAssertTrue("\(error)".contains("rank 0"), "\(error)")
            XCTAssertTrue("\(error)".contains("allreduce"), "\(error)")
        }
    }

    /// Rank 0's text reaches every rank whatever the others held (a run directory's name).
    func testTextBroadcastsFromTheRoot() throws {
        let world = LocalWorld(size: 3), got = ResultBox<String>()
        try world.run { comm in
            got.set(comm.rank, try comm.broadcast(text: comm.rank == 0 ? "runs/run-20261207-120000-2 é" : "other \(comm.rank)"))
        }
        XCTAssertEqual((0..<3).map { got.get($0) }, [String?](repeating: "runs/run-20261207-120000-2 é", count: 3))
        XCTAssertEqual(try SingleProcessCommunicator().broadcast(text: ""), "")
    }

    /// A world of ranks as threads lowers the thread count only when the program chose none
    /// (here the tests have: the count stays).
    func testAWorldKeepsTheThreadCountTheProgramSet() {
        let saved = numThreads
        defer { setNumThreads(saved) }
        setNumThreads(3)
        _ = LocalWorld(size: 2)
        XCTAssertEqual(numThreads, 3)
    }

    func testSingleProcessIsAWorldOfOne() throws {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual(comm.worldSize, 1)
        XCTAssertEqual(try comm.allreduceSum([2, 3]), [2, 3])
        let t = Tensor([1, 2])
        try comm.allreduce(t, op: .average)
        XCTAssertEqual(t.scalars, [1, 2])
    }

    func testLaunchEnvironmentDetection() {
        XCTAssertFalse(LaunchEnvironment.detect([:]).wantsMPI)
        let ompi = LaunchEnvironment.detect(["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "1"])
        XCTAssertTrue(ompi.wantsMPI)
        XCTAssertEqual(ompi.announcedWorldSize, 4)
        XCTAssertTrue("\(ompi)".contains("mpirun"))
        let slurm = LaunchEnvironment.detect(["SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "42"])
        XCTAssertTrue("\(slurm)".contains("srun"))
        XCTAssertEqual(slurm.announcedWorldSize, 8)
        XCTAssertNil(slurm.localSize)
        // srun's tasks per node: "2(x3),1" is two on each of nodes 0-2, then one on node 3.
        func srun(node: Int, _ list: String) -> Int? {
            LaunchEnvironment.detect(["SLURM_PROCID": "0", "SLURM_NTASKS": "7", "SLURM_NODEID": "\(node)", "SLURM_STEP_TASKS_PER_NODE": list]).localSize
        }
        XCTAssertEqual(srun(node: 0, "4"), 4)
        XCTAssertEqual(srun(node: 2, "2(x3),1"), 2)
        XCTAssertEqual(srun(node: 3, "2(x3),1"), 1)
        XCTAssertEqual(srun(node: 1, "3,1"), 1)
        XCTAssertNil(srun(node: 4, "2(x3),1"))
    }

    func testOverlapIsOffOnlyWhenOneNodesRanksFillItsCores() {
        func job(world: Int, local: Int?) -> LaunchEnvironment {
            var env = ["OMPI_COMM_WORLD_SIZE": "\(world)", "OMPI_COMM_WORLD_RANK": "0"]
            env["OMPI_COMM_WORLD_LOCAL_SIZE"] = local.map(String.init)
            return LaunchEnvironment.detect(env)
        }
        XCTAssertFalse(job(world: 2, local: 2).overlapPaysOff(threadsPerRank: 1, cores: 2))   // both cores computing
        XCTAssertFalse(job(world: 4, local: 4).overlapPaysOff(threadsPerRank: 1, cores: 2))   // oversubscribed
        XCTAssertTrue(job(world: 2, local: 2).overlapPaysOff(threadsPerRank: 1, cores: 8))    // idle cores
        XCTAssertTrue(job(world: 8, local: 4).overlapPaysOff(threadsPerRank: 2, cores: 8))    // a network to hide
        XCTAssertTrue(job(world: 2, local: nil).overlapPaysOff(threadsPerRank: 1, cores: 2))  // unknown: PyTorch's default
        XCTAssertTrue(LaunchEnvironment.detect([:]).overlapPaysOff(threadsPerRank: 1, cores: 1))
    }
}

/// Per-rank results collected from rank threads.
final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: T] = [:]
    func set(_ rank: Int, _ value: T) { lock.lock(); values[rank] = value; lock.unlock() }
    func get(_ rank: Int) -> T? { lock.lock(); defer { lock.unlock() }; return values[rank] }
}
