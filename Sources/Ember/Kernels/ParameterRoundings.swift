import CEmberProducts
import Foundation

/// Bfloat16 copies of parameters for a stretch of work in which they do not change, such as
/// generating text: every token multiplies the same weights, and rounding them again for each
/// token cost more than the bf16 products saved (a 124M GPT-2 generated at half its float32
/// speed). While `using` runs, the calling thread's products round each parameter (a leaf that
/// requires gradients) once and keep the copy, as `torch.autocast`'s weight cache does; the
/// owner must not change the parameters meanwhile (`IncrementalLogits` is for a fixed model).
/// A weight multiplied by one row at a time (a token) is kept packed as oneDNN's kernel for that
/// shape reads it: from a plain bfloat16 copy the kernel would rearrange it at every call, and
/// a one-row product is all reading the weight.
final class ParameterRoundings {
    private var copies: [ObjectIdentifier: (parameter: Tensor, rounded: Tensor?)] = [:]
    private var packs: [PackKey: (parameter: Tensor, packed: OpaquePointer?)] = [:]
    private var packed: Set<ObjectIdentifier> = []  // the parameters with a pack (either way)
    private struct PackKey: Hashable { let id: ObjectIdentifier, transposed: Bool }
    private static let key = "ember.parameterRoundings"

    deinit { for (_, kept) in packs { ember_free_packed_weight(kept.packed) } }

    /// The copies the calling thread's products use now, if any.
    static var current: ParameterRoundings? { Thread.current.threadDictionary[key] as? ParameterRoundings }

    /// Runs `body` with these copies in use on the calling thread (the previous ones after).
    func using<R>(_ body: () throws -> R) rethrows -> R {
        let dictionary = Thread.current.threadDictionary, previous = dictionary[Self.key]
        dictionary[Self.key] = self
        defer { dictionary[Self.key] = previous }
        return try body()
    }

    /// `parameter`'s copy, made by `round` the first time. The parameter is held, so its
    /// identity cannot pass to another tensor while the copy is kept.
    func rounded(_ parameter: Tensor, _ round: (Tensor) -> Tensor?) -> Tensor? {
        let id = ObjectIdentifier(parameter)
        if let kept = copies[id] { return kept.rounded }
        // A weight kept packed: its one-row products read the pack, and a prompt's product
        // rounds it on the way (nil), rather than a copy made at every token and then unused.
        if packed.contains(id) { return nil }
        let made = round(parameter)
        copies[id] = (parameter, made)
        return made
    }

    /// `weight` (`[k, n]`, or `[n, k]` when `transposed`) packed for one-row products `[1, k] ·
    /// weight`, made the first time; nil when oneDNN cannot. Its plain copy is dropped.
    func packedForOneRow(_ weight: Tensor, n: Int, k: Int, transposed: Bool) -> OpaquePointer? {
        let key = PackKey(id: ObjectIdentifier(weight), transposed: transposed)
        if let kept = packs[key] { return kept.packed }
        let packed = ember_pack_weight_bf16(transposed ? 1 : 0, 1, n, k, k, n, weight.pointer(Float.self), transposed ? k : n)
        packs[key] = (weight, packed)
        self.packed.insert(key.id)
        copies[key.id] = nil
        return packed
    }
}
