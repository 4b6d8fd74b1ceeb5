import CEmberSupport
import CMPI
import Ember
import Foundation

/// How far each rank of this node has got through the job's collectives, in a few words of
/// memory the node's ranks share: when a collective times out, the rank that waited can name
/// the ranks that never arrived (a stopped or hung rank), not only itself.
///
/// Every rank issues the same collectives in the same order, so the collective count is a
/// position in the job: each rank publishes the number of the collective it is in or last
/// finished, and when. Ranks on other nodes cannot be seen from here; the message says so.
final class Heartbeats {
    /// Per rank: [collective number, 1 while inside it, time of the last change (ns), process id].
    private let window: MPI_Win
    private let mine: UnsafeMutablePointer<UInt64>
    private let peers: [(rank: Int, slot: UnsafeMutablePointer<UInt64>)]
    let worldSize: Int

    /// Collective over the world communicator; nil when the node's shared memory is refused.
    init?(comm: MPI_Comm, rank: Int, worldSize: Int) {
        self.worldSize = worldSize
        var node: MPI_Comm? = nil
        guard MPI_Comm_split_type(comm, ember_mpi_comm_type_shared(), 0, ember_mpi_info_null(), &node) == ember_mpi_success() else { return nil }
        var size: Int32 = 0
        MPI_Comm_size(node, &size)
        var base: UnsafeMutableRawPointer? = nil
        var window: MPI_Win? = nil
        let code = MPI_Win_allocate_shared(64, 1, ember_mpi_info_null(), node, &base, &window)
        var ok: Int32 = code == ember_mpi_success() ? 1 : 0
        MPI_Allreduce(ember_mpi_in_place(), &ok, 1, ember_mpi_int(), ember_mpi_min(), node)
        guard ok == 1, let window, let base else {
            if window != nil { MPI_Win_free(&window) }
            return nil
        }
        var worldRanks = [Int32](repeating: 0, count: Int(size))
        var me = Int32(rank)
        MPI_Allgather(&me, 1, ember_mpi_int(), &worldRanks, 1, ember_mpi_int(), node)
        var peers: [(Int, UnsafeMutablePointer<UInt64>)] = []
        for local in 0..<Int(size) {
            var bytes: MPI_Aint = 0, unit: Int32 = 0
            var peer: UnsafeMutableRawPointer? = nil
            MPI_Win_shared_query(window, Int32(local), &bytes, &unit, &peer)
            if let peer { peers.append((Int(worldRanks[local]), peer.assumingMemoryBound(to: UInt64.self))) }
        }
        self.window = window
        mine = base.assumingMemoryBound(to: UInt64.self)
        self.peers = peers
        ember_store_u64(mine + 3, UInt64(getpid()))
        MPI_Barrier(node)
        var n: MPI_Comm? = node
        MPI_Comm_free(&n)
    }

    private func store(_ p: UnsafeMutablePointer<UInt64>, _ v: UInt64) { ember_store_u64(p, v) }
    private func load(_ p: UnsafeMutablePointer<UInt64>) -> UInt64 { ember_load_u64(p) }

    /// This rank enters collective number `n`.
    func entering(_ n: UInt64) {
        store(mine + 2, monotonicNanoseconds())
        store(mine + 1, 1)
        store(mine, n)
    }

    /// This rank has finished its current collective.
    func left() {
        store(mine + 1, 0)
        store(mine + 2, monotonicNanoseconds())
    }

    /// For a timeout message: the ranks of this node that have not reached collective `n`, and
    /// those that reached it but are stopped (their process state says so).
    func describeMissing(from n: UInt64) -> String {
        var missing: [String] = []
        let now = monotonicNanoseconds()
        for (rank, slot) in peers.sorted(by: { $0.rank < $1.rank }) {
            let at = load(slot), inside = load(slot + 1) == 1, since = load(slot + 2), pid = Int32(truncatingIfNeeded: load(slot + 3))
            let stopped = Heartbeats.isStopped(pid)
            guard at < n || stopped else { continue }
            let idle = Double(now &- since) / 1e9
            let state = stopped ? "stopped (process \(pid) is suspended)" : "stopped, or stuck outside communication"
            missing.append("rank \(rank) (\(inside ? "in" : "last finished") collective #\(at), \(Int(idle)) s ago: \(state))")
        }
        let unseen = worldSize - peers.count
        let others = unseen > 0 ? "; \(unseen) rank\(unseen == 1 ? "" : "s") on other nodes cannot be seen from here" : ""
        if missing.isEmpty { return unseen > 0 ? "every rank on this node has arrived\(others)" : "" }
        return "not arrived: " + missing.joined(separator: ", ") + others
    }

    /// Whether process `pid` of this node is stopped (state T or t in /proc).
    static func isStopped(_ pid: Int32) -> Bool {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state == "T" || state == "t"
    }

    func free() {
        var w: MPI_Win? = window
        MPI_Win_free(&w)
    }
}
