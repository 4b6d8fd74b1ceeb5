/// The keys and values every attention layer has computed for one sequence so far, so that
/// generating a token computes only that token (the prefix is never run again).
public final class KVCache {
    var keys: [Tensor?], values: [Tensor?]
    /// Positions the cache holds.
    public private(set) var length = 0

    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    /// Layer `i`'s keys and values `[1, heads, past + new, d]` after appending the new ones.
    func extend(_ i: Int, keys k: Tensor, values v: Tensor) -> (Tensor, Tensor) {
        let allK = keys[i].map { Tensor.cat([$0, k], dim: 2) } ?? k
        let allV = values[i].map { Tensor.cat([$0, v], dim: 2) } ?? v
        (keys[i], values[i]) = (allK, allV)
        return (allK, allV)
    }

    func advance(by n: Int) { length += n }
}

extension CausalLM {
    /// The logits `[vocab]` after `tokens`, the tokens that follow those `cache` holds (the whole
    /// prompt first, then one token at a time), extending the cache. Without gradients.
    public func nextLogits(after tokens: [Int], cache: KVCache) -> Tensor {
        require(!tokens.isEmpty, "nextLogits(after:cache:) needs at least one token")
        return noGrad {
            let x = Tensor(indices: tokens, shape: [1, tokens.count])
            let hidden: Tensor, head: Tensor
            if let transformer {
                hidden = transformer.forward(x, cache: cache)
                head = transformer.wte.weight
            } else {
                hidden = model!.forward(x, cache: cache)
                head = lmHead?.weight ?? model!.embedTokens.weight
            }
            cache.advance(by: tokens.count)
            // The head as the product's right operand, as in forward (there it can stay packed).
            let last = hidden[0][tokens.count - 1]
            return last.unsqueeze(0).matmul(head, transposeB: true).squeeze(0)
        }
    }

    /// The longest sequence the model takes (GPT-2's learned positions; Llama's trained length).
    public var maxPositions: Int { config.maxPositions }
}

/// Attention of new queries over the cached and new keys: causal among the new ones when the
/// cache is empty (the prompt), unmasked for one new token (it sees every earlier one).
func cachedAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, fresh: Bool, scale: Double? = nil) -> Tensor {
    require(fresh || q.shape[2] == 1, "a KVCache is extended by the prompt, then one token at a time (got \(q.shape[2]) new tokens)")
    return Tensor.scaledDotProductAttention(q, k, v, isCausal: fresh, scale: scale)
}
