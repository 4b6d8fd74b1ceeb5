import Ember
import EmberDistributed
import Foundation
import Logging
/// One batch's numbers, summed over the ranks: the loss (times samples), the samples, whether
/// any rank asks to stop, and the task's metrics.
struct BatchStatistics {
    var lossSum = 0.0, samples = 0.0
    var stopSignal = false, stopRequest = false
    var metrics = MetricTotals()
}

/// A task's metrics accumulated over batches (and ranks): value and count per name.
struct MetricTotals {
    var values: [String: (value: Double, count: Double)] = [:]

    /// Sums (or extremes) of `other` into these, per each metric's reduction.
    mutating func add(_ other: [String: (value: Double, count: Double)], _ metrics: [Metric]) {
        for m in metrics {
            guard let v = other[m.name] else { continue }
            let old = values[m.name]
            switch m.reduction {
            case .mean, .sum, .exponentiatedMean: values[m.name] = ((old?.value ?? 0) + v.value, (old?.count ?? 0) + v.count)
            case .max: values[m.name] = (Swift.max(old?.value ?? -.infinity, v.value), (old?.count ?? 0) + v.count)
            case .min: values[m.name] = (Swift.min(old?.value ?? .infinity, v.value), (old?.count ?? 0) + v.count)
            }
        }
    }

    /// Each metric's value: the mean for `.mean`, the total or extreme otherwise (nil when never recorded).
    func value(_ m: Metric) -> Double? {
        guard let v = values[m.name], v.count > 0 else { return nil }
        switch m.reduction {
        case .mean: return v.value / v.count
        case .exponentiatedMean: return Foundation.exp(v.value / v.count)
        default: return v.value
        }
    }

    /// The totals of every rank, combined exactly: one allreduce of the sums and counts (and
    /// one more of the extremes when there are `.max`/`.min` metrics), the same on every rank.
    static func reduce(_ local: [String: (value: Double, count: Double)], _ metrics: [Metric], prefix: [Double],
                       comm: Communicator) throws -> (prefix: [Double], totals: MetricTotals) {
        var flat = prefix
        // Sums and counts travel in one allreduce (extremes' values in the next one).
        for m in metrics {
            let v = local[m.name]
            flat += [[.mean, .sum, .exponentiatedMean].contains(m.reduction) ? v?.value ?? 0 : 0, v?.count ?? 0]
        }
        let summed = try comm.allreduceSum(flat)
        var extremes: [Double] = []
        let extremeMetrics = metrics.filter { $0.reduction == .max || $0.reduction == .min }
        if !extremeMetrics.isEmpty {
            // The minimum is the negated maximum of the negated values.
            let mine = extremeMetrics.map { m -> Double in
                let v = local[m.name]?.value
                return m.reduction == .max ? v ?? -.infinity : -(v ?? .infinity)
            }
            extremes = try comm.allreduceMax(mine)
        }
        var totals = MetricTotals()
        var extremeIndex = 0
        for (i, m) in metrics.enumerated() {
            let count = summed[prefix.count + 2 * i + 1]
            guard count > 0 else { if m.reduction == .max || m.reduction == .min { extremeIndex += 1 }; continue }
            switch m.reduction {
            case .mean, .sum, .exponentiatedMean: totals.values[m.name] = (summed[prefix.count + 2 * i], count)
            case .max: totals.values[m.name] = (extremes[extremeIndex], count); extremeIndex += 1
            case .min: totals.values[m.name] = (-extremes[extremeIndex], count); extremeIndex += 1
            }
        }
        return (Array(summed.prefix(prefix.count)), totals)
    }

    /// As stored in checkpoints.
    var stored: [String: [Double]] { values.mapValues { [$0.value, $0.count] } }
    init() {}
    init(stored: [String: [Double]]) {
        for (k, v) in stored where v.count == 2 { values[k] = (v[0], v[1]) }
    }
}
