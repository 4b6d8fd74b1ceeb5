import CEmberSupport

/// Whether operations on the calling thread are recorded for autograd.
///
/// The flag is per thread, so in-process ranks (threads) can evaluate without a graph while
/// another trains.
public enum GradMode {
    public static var isEnabled: Bool {
        get { ember_grad_enabled() != 0 }
        set { _ = ember_set_grad_enabled(newValue ? 1 : 0) }
    }
}

/// Runs `body` with no graph recorded, like `with torch.no_grad():`.
@discardableResult
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(false, body)
}

/// Runs `body` with recording on, even inside `noGrad`, like `torch.enable_grad()`.
@discardableResult
public func enableGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(true, body)
}

/// Runs `body` with grad mode set to `enabled`, restoring the previous mode afterwards.
@discardableResult
public func withGradMode<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
    let previous = ember_set_grad_enabled(enabled ? 1 : 0)
    defer { _ = ember_set_grad_enabled(previous) }
    return try body()
}
