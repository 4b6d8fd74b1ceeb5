import Ember
import EmberDistributed
import Foundation
import Logging
/// Why a run's loop ended.
enum StopReason: CustomStringConvertible {
    case completed
    case interrupted
    case earlyStopping(monitor: String, minDelta: Double, patience: Int)
    case diverged(loss: Double, step: Int)
    /// A callback asked (`TrainingContext.requestStop`).
    case requested(String)

    var description: String {
        switch self {
        case .completed: return "completed"
        case .interrupted: return "interrupted by signal"
        case .earlyStopping(let monitor, let minDelta, let patience):
            return monitor == "val_loss" ? "early stopping: no validation improvement of \(minDelta) for \(patience) epochs"
                : "early stopping: no improvement of \(monitor) by \(minDelta) for \(patience) epochs"
        case .diverged(let loss, let step): return "loss became \(loss) at step \(step)"
        case .requested(let why): return why
        }
    }
}
