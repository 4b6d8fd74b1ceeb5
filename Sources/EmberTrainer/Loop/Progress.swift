import Foundation

/// Training progress on rank 0: a bar redrawn in place on a terminal, plain lines every
/// `--log-interval` steps otherwise (files, pipes, batch jobs).
struct ProgressReporter {
    let interactive: Bool
    let logInterval: Int
    let totalEpochs: Int
    /// Training by steps: progress counts steps of the run, not batches of an epoch.
    let maxSteps: Int?
    /// What throughput counts (`samples`, `tokens`).
    let unit: String
    private var lastDraw = Date.distantPast

    init(interactive: Bool, logInterval: Int, totalEpochs: Int, maxSteps: Int? = nil, unit: String = "samples") {
        self.interactive = interactive
        self.logInterval = logInterval
        self.totalEpochs = totalEpochs
        self.maxSteps = maxSteps
        self.unit = unit
    }

    /// Called after every optimizer step with the epoch's running global loss.
    mutating func step(epoch: Int, batch: Int, batches: Int, step: Int, loss: Double, samplesPerSecond: Double, elapsed: Double) {
        if let maxSteps {
            let interval = batch % logInterval == 0 || batch == batches
            guard interactive ? Date().timeIntervalSince(lastDraw) > 0.1 || batch == batches : interval else { return }
            lastDraw = Date()
            let text = String(format: "step %d/%d  loss %.4f  %.0f %@/s", step, maxSteps, loss, samplesPerSecond, unit)
            interactive ? Console.write("\r" + text + "   ") : Console.writeLine(text)
            return
        }
        if interactive {
            // At most ten redraws a second.
            guard Date().timeIntervalSince(lastDraw) > 0.1 || batch == batches else { return }
            lastDraw = Date()
            let width = 24, done = Int(Double(width) * Double(batch) / Double(max(batches, 1)))
            let bar = String(repeating: "█", count: done) + String(repeating: "·", count: width - done)
            let eta = batch > 0 ? elapsed / Double(batch) * Double(batches - batch) : 0
            Console.write(String(format: "\repoch %d/%d %@ %d/%d  loss %.4f  %.0f samples/s  eta %@   ",
                                 epoch + 1, totalEpochs, bar, batch, batches, loss, samplesPerSecond, Self.duration(eta)))
        } else if batch % logInterval == 0 || batch == batches {
            Console.writeLine(String(format: "epoch %d/%d step %d/%d loss %.4f %.0f samples/s",
                                     epoch + 1, totalEpochs, batch, batches, loss, samplesPerSecond))
        }
    }

    /// Ends the in-place line before the epoch summary.
    func endEpoch() {
        if interactive { Console.write("\r" + String(repeating: " ", count: 100) + "\r") }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s / 60 % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
