import Ember
import EmberDistributed
import Foundation
import Logging

/// What rank 0 says at the start, and the check that every rank runs the same thing.
extension RankLoop {
    /// Rank 0 says how the job sits on the machine, and every rank proves it runs the same
    /// program with the same options and weights: one allgather of three checksums (the
    /// executable, the configuration, the weights after rank 0's were broadcast). A rank that
    /// differs is an error naming it.
    func startupCheck() throws {
        let state = model.stateDict()
        let weights = state.keys.sorted().reduce(UInt32(0)) { crc, key in
            let t = state[key]!
            return crc &* 31 &+ Checksum.crc32(Data(bytes: t.dataPointer, count: t.count * t.dtype.byteSize))
        }
        let mine = [Double(RankLoop.executableChecksum), Double(Checksum.crc32(config.json())), Double(weights)]
        let all = try comm.allgather(mine)
        for (i, what) in ["executable", "configuration", "weights after the broadcast"].enumerated() {
            let differing = all.indices.filter { all[$0][i] != all[0][i] }
            if !differing.isEmpty {
                throw ConfigError("start-up check: rank\(differing.count == 1 ? "" : "s") \(differing.map(String.init).joined(separator: ", ")) \(differing.count == 1 ? "has" : "have") another \(what) than rank 0; every rank must run the same build with the same options")
            }
        }
        guard isCoordinator else { return }
        let topology = comm.topology
        let perNode = topology?.ranksOnThisNode ?? 1, nodes = topology?.nodes ?? 1
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let load = perNode * numThreads > cores ? " (more threads than cores: ranks will wait for each other"
            + (settings.yieldsWhenIdle ? ", yielding their cores while they do: OMPI_MCA_mpi_yield_when_idle=1)" : ")") : ""
        log.info("start-up check: \(comm.worldSize) rank\(comm.worldSize == 1 ? "" : "s") on \(nodes) node\(nodes == 1 ? "" : "s") (\(perNode) on this one), \(numThreads) product thread\(numThreads == 1 ? "" : "s") per rank on \(cores) cores\(load)")
        log.info("\(String(format: "start-up check: executable %08x, configuration %08x, weights %08x: the same on every rank", UInt32(mine[0]), UInt32(mine[1]), UInt32(mine[2])))")
    }

    /// CRC-32 of this program's file (0 where it cannot be read).
    static var executableChecksum: UInt32 {
        (try? Data(contentsOf: URL(fileURLWithPath: "/proc/self/exe"))).map(Checksum.crc32) ?? 0
    }

    /// What the run says at its start (rank 0).
    func announce() {
        let globalBatch = config.batchSize * comm.worldSize
        if let notice = task.dataNotice { log.notice("\(notice)") }
        log.info("training \(task.name) (\(model.parameterCount) parameters)\(task.dataSource.map { " on \($0)" } ?? ""): \(train.count) train, \(val?.count ?? 0) validation, \(test?.count ?? 0) test samples")
        log.info("world \(comm.worldSize) (\(comm.backendName)), batch \(config.batchSize) per rank = \(globalBatch) global\(config.gradAccumulation > 1 ? " × \(config.gradAccumulation) accumulated" : ""), \(batchesPerEpoch) batches per epoch, optimizer \(config.optimizer) lr \(config.lr)")
        if comm.worldSize > 1 {
            let sharding = ddp.shardsOptimizerStep ? "; optimizer step sharded over the ranks (reduce-scatter, update a shard, allgather)" : ""
            let transport = switch ddp.reduceDtype == .bfloat16 ? "bf16" : comm.transportSelection?.transportName {
            case "bf16": " in bfloat16 (half the bytes; each arriving value added in float32)"
            case "auto": " through shared memory or MPI's transport, whichever makes steps faster (tried again every 500 steps)"
            case "shm": " through shared memory (one node)"
            case "shm+mpi": " through shared memory within each node and MPI between nodes"
            default: ""
            }
            if ddp.reduceDtype == .bfloat16, let topology = comm.topology, topology.nodes == 1 {
                log.notice("--reduce-dtype bf16 saves network bytes, but these \(comm.worldSize) ranks share one node, where float32 gradients summed in shared memory are faster (docs/precision.md)")
            }
            log.info("gradients: \(ddp.bucketSizes.count) allreduce bucket(s) of up to \(config.bucketKB) KiB, \(ddp.overlap ? "overlapped with backward" : "after backward (ranks fill this node's cores)")\(transport)\(sharding)")
        }
    }
}
