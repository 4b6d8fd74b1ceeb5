import Ember
import EmberDistributed
import Foundation

/// A timeline of training (`--trace DIR`): per rank, spans for waiting on data, forward,
/// backward, each gradient bucket's reduction and the wait for it, the optimizer step, the
/// per-batch metrics reduction (where a rank waits for the slowest), validation and checkpoints,
/// in the Chrome trace event format that Perfetto and chrome://tracing open.
///
/// Each rank writes `DIR/rank-N.json`, a JSON array kept valid after every flush (so a run that
/// dies leaves readable files); at the end rank 0 merges them into `DIR/trace.json` with one
/// process per rank (`trainer trace DIR` merges and summarises any time). Clocks are aligned at
/// a barrier: every rank counts time from the moment it left it. Only `steps` optimizer steps
/// are traced, from the first step of the run on; off (no `--trace`) it records nothing.
final class TraceRecorder {
    let rank: Int
    let directory: String
    /// Optimizer steps to trace, counted from the run's first.
    let steps: Int
    private let origin: UInt64
    private var buffer: [String] = []
    private let lock = NSLock()
    private let fd: Int32
    private var wroteAny = false
    private var tracedSteps = 0
    /// Whether spans are being recorded now (the window of steps).
    private(set) var active = true
    /// Why the timeline stopped early (a write failed: a full disk, say); training goes on.
    private(set) var failure: String?
    private let path: String

    /// Collective: the ranks align their clocks at a barrier.
    init(directory: String, steps: Int, comm: Communicator) throws {
        rank = comm.rank
        self.directory = directory
        self.steps = steps
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("rank-\(comm.rank).json")
        self.path = path
        // A file that cannot be made stops this rank's timeline, not the run (nor the barrier,
        // which every rank must reach).
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        self.fd = fd
        if fd < 0 || "[]".withCString({ write(fd, $0, 2) }) != 2 {
            failure = "cannot write \(path): \(String(cString: strerror(errno)))"
            active = false
        }
        try comm.barrier()
        origin = monotonicNanoseconds()
        meta("process_name", ["name": "rank \(rank)"])
        meta("thread_name", ["name": "training"], thread: 0)
        meta("thread_name", ["name": "communication"], thread: 1)
    }

    deinit { if fd >= 0 { close(fd) } }

    static func now() -> UInt64 { monotonicNanoseconds() }

    private func meta(_ name: String, _ args: [String: String], thread: Int = 0) {
        let a = args.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
        append("{\"ph\":\"M\",\"name\":\"\(name)\",\"pid\":\(rank),\"tid\":\(thread),\"args\":{\(a)}}")
    }

    /// A span from `start` to `end` (monotonic nanoseconds) in `category` on thread 0 (training)
    /// or 1 (communication).
    func span(_ name: String, _ category: String, _ start: UInt64, _ end: UInt64 = TraceRecorder.now(), thread: Int = 0,
              args: [String: Double] = [:]) {
        guard active, start >= origin else { return }
        let ts = Double(start - origin) / 1000, dur = Double(end &- start) / 1000
        let a = args.isEmpty ? "" : ",\"args\":{" + args.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        append(String(format: "{\"ph\":\"X\",\"name\":\"%@\",\"cat\":\"%@\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f%@}",
                      name, category, rank, thread, ts, max(dur, 0), a))
    }

    /// Times `body` as a span.
    func measure<R>(_ name: String, _ category: String, _ body: () throws -> R) rethrows -> R {
        guard active else { return try body() }
        let start = TraceRecorder.now()
        defer { span(name, category, start) }
        return try body()
    }

    private func append(_ event: String) {
        lock.lock()
        buffer.append(event)
        lock.unlock()
    }

    /// After each optimizer step: writes what was recorded, and closes the window after `steps`.
    /// Returns why the timeline stopped when a write failed at this step (once).
    func stepEnded() -> String? {
        guard active else { return nil }
        tracedSteps += 1
        flush()
        if tracedSteps >= steps { active = false }
        return failure
    }

    /// Appends the buffered events, keeping the file one valid JSON array: the closing bracket
    /// is overwritten and written again after the new events.
    func flush() {
        lock.lock()
        let events = buffer
        buffer.removeAll(keepingCapacity: true)
        lock.unlock()
        guard !events.isEmpty, failure == nil, fd >= 0 else { return }
        let text = (wroteAny ? ",\n" : "\n") + events.joined(separator: ",\n") + "\n]"
        wroteAny = true
        let end = lseek(fd, 0, SEEK_END)
        let length = text.utf8.count
        let written = text.withCString { pwrite(fd, $0, length, end - 1) }
        if written != length {
            failure = "cannot write \(path): \(written < 0 ? String(cString: strerror(errno)) : "short write (disk full?)")"
            active = false
        }
    }

    /// Rank 0, at the end: every rank's events in one file (`trace.json`).
    static func merge(directory: String) throws -> String {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("rank-") && $0.hasSuffix(".json") }
        guard !names.isEmpty else { throw ConfigError("\(directory) holds no trace (rank-N.json files from --trace)") }
        var events: [Any] = []
        for name in names.sorted() {
            let data = try Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw DataError.file(name, "is not a trace (a JSON array of events)")
            }
            events += array
        }
        let out = (directory as NSString).appendingPathComponent("trace.json")
        let data = try JSONSerialization.data(withJSONObject: ["traceEvents": events, "displayTimeUnit": "ms"])
        try AtomicFile.write(data, to: out)
        return out
    }
}

/// Where a traced step's time went, per rank (`trainer trace DIR`, and the end of a traced run).
enum TraceSummary {
    struct Row {
        var steps = 0
        var total = 0.0, compute = 0.0, exposedCommunication = 0.0, waiting = 0.0, data = 0.0, optimizer = 0.0
    }

    /// Per rank, mean milliseconds per step.
    static func rows(directory: String) throws -> [Int: Row] {
        let path = (directory as NSString).appendingPathComponent("trace.json")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let events = object["traceEvents"] as? [[String: Any]] else {
            throw DataError.file(path, "is not a merged trace")
        }
        var rows: [Int: Row] = [:]
        for e in events where (e["ph"] as? String) == "X" {
            guard let pid = e["pid"] as? Int, let cat = e["cat"] as? String, let dur = (e["dur"] as? Double).map({ $0 / 1000 }) else { continue }
            var r = rows[pid] ?? Row()
            switch cat {
            case "step": r.steps += 1; r.total += dur
            case "forward", "backward": r.compute += dur
            case "wait": r.exposedCommunication += dur; r.compute -= dur  // inside backward
            case "sync": r.waiting += dur
            case "data": r.data += dur
            case "optimizer": r.optimizer += dur
            default: break
            }
            rows[pid] = r
        }
        return rows
    }

    /// A picture of the first `steps` traced batches: one lane per rank and thread, a box per
    /// span, coloured by kind.
    static func svg(directory: String, steps: Int = 3) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("trace.json")))
        let events = ((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["traceEvents"] as? [[String: Any]]) ?? []
        let spans = events.filter { ($0["ph"] as? String) == "X" }
        let firstSteps = spans.filter { ($0["cat"] as? String) == "step" && ($0["pid"] as? Int) == 0 }
            .sorted { ($0["ts"] as? Double ?? 0) < ($1["ts"] as? Double ?? 0) }.prefix(steps)
        guard let t0 = firstSteps.first?["ts"] as? Double, let last = firstSteps.last,
              let t1 = (last["ts"] as? Double).map({ $0 + (last["dur"] as? Double ?? 0) }) else {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text x=\"10\" y=\"25\">no traced steps</text></svg>\n"
        }
        let ranks = Set(spans.compactMap { $0["pid"] as? Int }).sorted()
        let colors = ["data": "#adb5bd", "forward": "#4dabf7", "backward": "#1971c2", "wait": "#e03131", "reduce": "#f08c00",
                      "optimizer": "#2f9e44", "sync": "#ae3ec9", "validation": "#868e96", "checkpoint": "#495057"]
        let width = 1000.0, left = 130.0, lane = 26.0, top = 40.0
        let scale = (width - left - 20) / max(t1 - t0, 1)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(top + Double(ranks.count * 2) * lane + 60))\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += String(format: "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%d training steps, %.2f ms</text>\n", firstSteps.count, (t1 - t0) / 1000)
        for (i, rank) in ranks.enumerated() {
            for thread in 0..<2 {
                let y = top + Double(2 * i + thread) * lane
                out += "<text x=\"10\" y=\"\(y + 16)\">rank \(rank) \(thread == 0 ? "training" : "communication")</text>\n"
                for e in spans where (e["pid"] as? Int) == rank && (e["tid"] as? Int ?? 0) == thread {
                    guard let cat = e["cat"] as? String, cat != "step", let ts = e["ts"] as? Double, let dur = e["dur"] as? Double,
                          ts + dur >= t0, ts <= t1 else { continue }
                    let x = left + (max(ts, t0) - t0) * scale, w = max((min(ts + dur, t1) - max(ts, t0)) * scale, 0.5)
                    out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"><title>%@ %.3f ms</title></rect>\n",
                                  x, y + 3, w, lane - 6, colors[cat] ?? "#000000", (e["name"] as? String) ?? cat, dur / 1000)
                }
            }
        }
        var x = left
        let legendY = top + Double(ranks.count * 2) * lane + 25
        for cat in ["data", "forward", "backward", "reduce", "wait", "optimizer", "sync", "validation", "checkpoint"] {
            out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/><text x=\"%.1f\" y=\"%.1f\">%@</text>\n",
                          x, legendY, colors[cat]!, x + 16, legendY + 10, cat)
            x += 92
        }
        return out + "</svg>\n"
    }

    /// The table: one line per rank.
    static func table(directory: String) throws -> String {
        let rows = try rows(directory: directory)
        var lines = ["rank  steps  step_ms  compute_ms  exposed_comm_ms  optimizer_ms  waiting_ms  data_ms",
                     "      (mean per step; compute = forward + backward less the wait for reductions; waiting = for the slowest rank)"]
        for rank in rows.keys.sorted() {
            let r = rows[rank]!, n = Double(max(r.steps, 1))
            lines.append(String(format: "%4d  %5d  %7.3f  %10.3f  %15.3f  %12.3f  %10.3f  %7.3f", rank, r.steps, r.total / n, r.compute / n,
                                r.exposedCommunication / n, r.optimizer / n, r.waiting / n, r.data / n))
        }
        return lines.joined(separator: "\n")
    }
}

/// `trainer trace DIR`: a timeline's files merged and summarised, also after a run that died.
public enum TraceTools {
    /// Merges `DIR/rank-N.json` into `DIR/trace.json`; returns its path.
    public static func merge(directory: String) throws -> String { try TraceRecorder.merge(directory: directory) }
    /// Where a step's time went, per rank (mean milliseconds per traced batch).
    public static func summary(directory: String) throws -> String { try TraceSummary.table(directory: directory) }
    /// A picture of the first traced steps, per rank (SVG).
    public static func picture(directory: String, steps: Int = 3) throws -> String { try TraceSummary.svg(directory: directory, steps: steps) }
}
