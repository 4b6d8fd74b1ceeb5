import CEmberSupport

// Three hooks the engine owns for code that manages gradients outside Ember (a data-parallel
// wrapper is the user): where a leaf's gradient is written, work to run when a backward pass
// ends, and work that must finish before an optimizer reads a gradient. Ops never see them; a
// backward rule at most computes into a buffer the engine offers (`GradientOutput`).

/// A buffer a backward rule may compute one input's gradient into, offered by the engine: the
/// rule writes `scale` times the gradient there and returns `buffer` as that input's gradient.
/// Offered only when that gradient is the input's whole gradient in this backward and nothing
/// (a hook, a recorded backward) could see it before it lands.
struct GradientOutput {
    let buffer: Tensor
    let scale: Double
}

/// What the engine offers one node's rule: a `GradientOutput` or nil per input.
struct GradientOutputs {
    private let offers: [GradientOutput?]

    /// Nothing offered (the common case: no array is built).
    static let none = GradientOutputs(offers: [])

    /// The offers for `inputs` in a backward that accumulates into `.grad` (`accumulating`).
    static func offered(to inputs: [Tensor?], accumulating: Bool) -> GradientOutputs {
        guard accumulating, inputs.contains(where: { $0?.gradientDestination != nil }) else { return .none }
        return GradientOutputs(offers: inputs.map { $0?.offeredOutput() })
    }

    subscript(_ input: Int) -> GradientOutput? { offers.isEmpty ? nil : offers[input] }
}

extension Tensor {
    /// Asks backward to write this leaf's gradient into `buffer` (same shape and dtype) times
    /// `scale` whenever `.grad` is empty, and to make `buffer` the `.grad`; nil restores the
    /// default (a fresh tensor). Later backward passes add into `.grad` as usual, times `scale`
    /// while `.grad` is still `buffer`.
    ///
    /// What PyTorch's `gradient_as_bucket_view` does: a data-parallel wrapper points each
    /// parameter into a flat bucket so gradients need no packing copy, and passes `scale`
    /// = 1/world so the bucket's sum over ranks is already the average.
    public func setGradientDestination(_ buffer: Tensor?, scale: Double = 1) {
        if let buffer {
            guard buffer.shape == shape && buffer.dtype == dtype else {
                fatalError("setGradientDestination: the buffer is \(buffer.shape) \(buffer.dtype) but the tensor is \(shape) \(dtype)")
            }
            guard isLeaf else { fatalError("setGradientDestination: only a leaf tensor has a gradient of its own") }
        }
        gradientDestination = buffer.map { GradientOutput(buffer: $0, scale: scale) }
    }

    /// The buffer set by `setGradientDestination`, if any.
    public var gradientBuffer: Tensor? { gradientDestination?.buffer }

    /// What the engine offers a rule producing this tensor's gradient in a backward that
    /// accumulates into `.grad` (see `GradientOutput`).
    fileprivate func offeredOutput() -> GradientOutput? {
        guard let destination = gradientDestination, gradFn == nil, leafRequiresGrad, grad == nil,
              gradHooks.isEmpty, engineUses == 1 else { return nil }
        return destination
    }
}

// MARK: Callbacks at the end of backward

/// The backward passes running on this thread (innermost last), each with its queued callbacks.
final class BackwardRun {
    private(set) var callbacks: [(key: ObjectIdentifier?, body: () throws -> Void)] = []

    func queue(_ key: ObjectIdentifier?, _ body: @escaping () throws -> Void) -> Bool {
        if let key, callbacks.contains(where: { $0.key == key }) { return false }
        callbacks.append((key, body))
        return true
    }

    /// Runs the callbacks in the order they were queued, including any queued meanwhile.
    func finish() throws {
        var next = 0
        while next < callbacks.count {
            let body = callbacks[next].body
            next += 1
            try body()
        }
    }

    /// The innermost backward pass on the calling thread.
    static var current: BackwardRun? {
        ember_current_backward().map { Unmanaged<BackwardRun>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Makes `run` current for `body` (the engine's graph walk).
    static func with<R>(_ run: BackwardRun, _ body: () throws -> R) rethrows -> R {
        let previous = ember_set_current_backward(Unmanaged.passUnretained(run).toOpaque())
        defer { _ = ember_set_current_backward(previous) }
        return try withExtendedLifetime(run) { try body() }
    }
}

/// Queues `body` to run when the backward pass now running on this thread has walked its whole
/// graph, before `backward()` returns (PyTorch's `queue_callback`); an error it throws ends that
/// backward with the error. With `once`, an object already holding a callback in this pass
/// queues nothing. Returns whether `body` was queued. Call it from a hook during backward.
@discardableResult
public func queueBackwardCallback(once key: AnyObject? = nil, _ body: @escaping () throws -> Void) -> Bool {
    guard let run = BackwardRun.current else {
        fatalError("queueBackwardCallback: no backward pass is running on this thread; call it from a gradient hook")
    }
    return run.queue(key.map(ObjectIdentifier.init), body)
}

// MARK: Gradients still being completed

/// Something that must finish before a tensor's gradient may be read, such as a reduction over
/// data-parallel ranks still in flight: optimizers and clipping call `completePendingGradients`
/// before reading `.grad`.
public protocol PendingGradient: AnyObject {
    func completeGradients() throws
}

extension Tensor {
    /// Marks this tensor's gradient as not yet final until `pending` completes it (nil: final).
    /// Held weakly.
    public func setPendingGradient(_ pending: PendingGradient?) { pendingGradient = pending }

    /// Whether `completePendingGradients` still has work to do for this tensor.
    public var hasPendingGradient: Bool { pendingGradient != nil }
}

/// Completes whatever gradients of `tensors` are pending (each owner once), so `.grad` then holds
/// the final values.
public func completePendingGradients<S: Sequence<Tensor>>(_ tensors: S) throws {
    var done: [ObjectIdentifier] = []
    for t in tensors {
        guard let pending = t.pendingGradient else { continue }
        let id = ObjectIdentifier(pending)
        guard !done.contains(id) else { continue }
        done.append(id)
        try pending.completeGradients()
    }
}
