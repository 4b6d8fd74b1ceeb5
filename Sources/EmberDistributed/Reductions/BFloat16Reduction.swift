import CMPI
@_spi(Checks) import Ember
import Foundation

/// Gradients exchanged in bfloat16 (`DataParallel(reduceDtype: .bfloat16)`, the trainer's
/// `--reduce-dtype bf16`): half the bytes of float32. Each rank rounds its (float32) gradients to
/// bfloat16; the collective adds every arriving value in float32 and rounds the sum back to
/// bfloat16 (as NCCL sums bfloat16, and PyTorch's `bf16_compress_hook` relies on); each rank
/// widens the result to float32 again. Two ranks round three times in all: each operand, and the
/// sum; a ring over more ranks rounds each partial sum on its way.
extension Communicator {
    /// Without a bfloat16 collective of its own (ranks as threads, a world of one): widened to
    /// float32, summed, and rounded once; the same bits as MPI's on two ranks. Runs at once.
    public func allreduceBFloat16Async(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) -> CommRequest {
        guard worldSize > 1 else { return .completed() }
        let wide = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { wide.deallocate() }
        BFloat16.widen(buffer, into: wide, count: count)
        do { try allreduce(wide, count: count, op: .sum) } catch { return .completed(error) }
        BFloat16.round(wide, into: buffer, count: count)
        return .completed()
    }
}

extension MPICommunicator {
    /// MPI_Allreduce of 16-bit values with a user-defined sum (`ember_bf16_sum` in CMPI's shim),
    /// on the communication queue like every collective. The buffer is ordinary memory, so the
    /// shared-memory transports stay out of it.
    public func allreduceBFloat16Async(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) -> CommRequest {
        require(count <= Int(Int32.max), "allreduce of more than 2^31 values in one call")
        nonisolated(unsafe) let pointer = buffer
        return CommRequest.start(on: queue) { [self] in
            let op = try bfloat16Sum()
            try call("allreduce(bf16 sum, \(count) values)") {
                MPI_Allreduce(ember_mpi_in_place(), pointer, Int32(count), ember_mpi_uint16(), op, ember_mpi_comm_world())
            }
        }
    }
}
