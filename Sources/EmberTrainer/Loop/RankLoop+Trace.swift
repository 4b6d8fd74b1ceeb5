import Ember
import EmberDistributed
import Foundation
import Logging

extension RankLoop {
    /// Times `body` as a span of the timeline when tracing.
    func measure<R>(_ name: String, _ category: String, _ body: () throws -> R) rethrows -> R {
        guard let trace else { return try body() }
        return try trace.measure(name, category, body)
    }

    /// The timeline: the recorder (clocks aligned at a barrier), and the reductions' own spans.
    func startTrace(_ dir: String) throws {
        let recorder = try TraceRecorder(directory: dir, steps: config.traceSteps, comm: comm)
        trace = recorder
        if let failure = recorder.failure { return stopTrace(failure) }
        ddp.observer = { [unowned recorder] event in
            switch event {
            case .bucket(let i, let start, let end, let overlapped):
                recorder.span("reduce bucket \(i)", "reduce", start, end, thread: overlapped ? 1 : 0)
            case .wait(let start, let end):
                recorder.span("wait for reductions", "wait", start, end)
            }
        }
        if isCoordinator { log.info("tracing the first \(config.traceSteps) batches into \(dir)") }
    }

    /// A timeline that cannot be written stops; the run goes on (a side feature never costs it).
    func stopTrace(_ why: String) {
        log.warning("--trace stopped: \(why); training goes on without a timeline")
        ddp.observer = nil
        trace = nil
    }

    /// The end of a traced run: every rank's file complete, then rank 0 merges them and says
    /// where the time went. Every rank takes part even when its own timeline stopped early (the
    /// merge is collective); a failure is a warning, never the run's.
    func finishTrace() {
        guard let dir = config.trace else { return }
        trace?.flush()
        if let failure = trace?.failure { stopTrace(failure) }
        ddp.observer = nil
        do {
            try comm.barrier()
            try Trainer.onRankZero(comm) {
                let merged = try TraceRecorder.merge(directory: dir)
                Console.writeLine("trace: \(merged) (open it in Perfetto or chrome://tracing)")
                Console.writeLine(try TraceSummary.table(directory: dir))
                try AtomicFile.write(Data(try TraceSummary.svg(directory: dir).utf8), to: (runDir as NSString).appendingPathComponent("timeline.svg"))
            }
        } catch {
            if isCoordinator { log.warning("--trace: no timeline written: \((error as? SharedError)?.underlying ?? error); the run's results are unaffected") }
        }
    }
}
