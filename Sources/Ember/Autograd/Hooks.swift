import Synchronization

/// Removes the hook it was returned for.
public struct HookHandle: Sendable {
    let id: Int
    weak var tensor: Tensor?

    public func remove() {
        tensor?.gradHooks.removeAll { $0.id == id }
        tensor?.postAccumulateHooks.removeAll { $0.id == id }
    }
}

private let nextHookID = Atomic<Int>(0)

extension Tensor {
    /// Runs `hook` each time this tensor's gradient is computed in backward, before it is used or
    /// accumulated. Returning a tensor replaces the gradient (same shape); nil keeps it.
    @discardableResult
    public func registerHook(_ hook: @escaping (Tensor) -> Tensor?) -> HookHandle {
        require(requiresGrad, "cannot register a hook on a tensor that does not require grad")
        let id = nextHookID.add(1, ordering: .relaxed).newValue
        gradHooks.append((id, hook))
        return HookHandle(id: id, tensor: self)
    }

    /// Runs `hook` on a leaf right after backward has accumulated into its `.grad`; the
    /// data-parallel wrapper starts a bucket's allreduce from here, overlapping backward.
    @discardableResult
    public func registerPostAccumulateGradHook(_ hook: @escaping (Tensor) -> Void) -> HookHandle {
        require(isLeaf && requiresGrad, "post-accumulate hooks need a leaf that requires grad")
        let id = nextHookID.add(1, ordering: .relaxed).newValue
        postAccumulateHooks.append((id, hook))
        return HookHandle(id: id, tensor: self)
    }
}
